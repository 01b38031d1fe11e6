/**
 * Following a long operation: its live log over the WebSocket `tasks/{tid}/stream`
 * (with `tasks/{tid}/log` polling as the fallback), its progress, and remembering
 * followed tasks across page reloads.
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI, wsUrl } from './api';
import { FINAL_STATES, ITask } from './types';

/** How often progress (and, without a WebSocket, the log) is polled, in milliseconds. */
export const POLL_INTERVAL_MS = 700;

/** Log lines kept per task in the browser. */
export const MAX_LINES = 2000;

/** A chunk of a task log as `tasks/{tid}/log` and the stream send it. */
export interface ILogChunk {
  offset: number;
  lines: string[];
  next: number;
  truncated?: boolean;
  state?: string;
}

/** What a follower reports. */
export interface IFollowerCallbacks {
  /** New log lines, starting at `offset`; `next` is the offset to resume from. */
  onLines(chunk: ILogChunk): void;
  /** The task changed (state, progress). */
  onTask(task: ITask): void;
  /** Following failed for good (e.g. the task is gone: the server restarted). */
  onLost(message: string): void;
}

/** Append a chunk to what is shown, ignoring lines already seen (reconnects may overlap). */
export function appendChunk(
  lines: string[],
  offset: number,
  chunk: ILogChunk,
  maxLines = MAX_LINES
): { lines: string[]; offset: number } {
  if (chunk.next <= offset) {
    return { lines, offset };
  }
  const skip = Math.max(0, offset - chunk.offset);
  let fresh = chunk.lines.slice(skip);
  if (chunk.offset > offset) {
    fresh = [`… ${chunk.offset - offset} earlier lines were dropped by the server …`, ...fresh];
  }
  const all = lines.concat(fresh);
  return { lines: all.length > maxLines ? all.slice(all.length - maxLines) : all, offset: chunk.next };
}

/**
 * Follows one task from a log offset until it finishes or `stop()` is called.
 */
export class TaskFollower {
  constructor(
    readonly tid: string,
    private offset: number,
    private callbacks: IFollowerCallbacks,
    private settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
    private useWebSocket = true
  ) {}

  /** Whether the follower still runs. */
  get running(): boolean {
    return !this._stopped;
  }

  /** Start following. */
  start(): void {
    if (this.useWebSocket && typeof WebSocket !== 'undefined') {
      this.openSocket();
    }
    void this.pollLoop();
  }

  /** Stop following; nothing is reported afterwards. */
  stop(): void {
    this._stopped = true;
    this._socket?.close();
    this._socket = null;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    this._wake?.();
  }

  private openSocket(): void {
    let socket: WebSocket;
    try {
      socket = new WebSocket(wsUrl(`tasks/${this.tid}/stream?offset=${this.offset}`, this.settings));
    } catch (error) {
      console.warn('jupyter-envs: no WebSocket, polling the log instead', error);
      return;
    }
    this._socket = socket;
    socket.onmessage = event => {
      if (this._stopped) {
        return;
      }
      let message: any;
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (message.type === 'log') {
        this.take(message as ILogChunk);
      } else if (message.type === 'end' && message.task) {
        this.finish(message.task as ITask);
      }
    };
    socket.onclose = () => {
      if (this._socket === socket) {
        // Dropped (proxy, tunnel, server restart): the poll loop takes over the log.
        this._socket = null;
      }
    };
  }

  private take(chunk: ILogChunk): void {
    if (chunk.next > this.offset) {
      this.callbacks.onLines(chunk);
      this.offset = chunk.next;
    }
  }

  private finish(task: ITask): void {
    if (this._stopped) {
      return;
    }
    this.callbacks.onTask(task);
    if (FINAL_STATES.has(task.state) && this.offset >= (task as any).log_length) {
      this.stop();
    }
  }

  private async pollLoop(): Promise<void> {
    let failures = 0;
    while (!this._stopped) {
      try {
        if (this._socket === null) {
          const { data } = await requestAPI<ILogChunk>(
            `tasks/${this.tid}/log?offset=${this.offset}`,
            {},
            this.settings
          );
          if (this._stopped) {
            return;
          }
          this.take(data);
        }
        const { data: task } = await requestAPI<ITask>(`tasks/${this.tid}`, {}, this.settings);
        failures = 0;
        if (this._stopped) {
          return;
        }
        if (FINAL_STATES.has(task.state) && this._socket === null) {
          // Read what is left of the log, then report the end.
          const { data } = await requestAPI<ILogChunk>(
            `tasks/${this.tid}/log?offset=${this.offset}`,
            {},
            this.settings
          );
          this.take(data);
          this.callbacks.onTask(task);
          this.stop();
          return;
        }
        this.callbacks.onTask(task);
        if (FINAL_STATES.has(task.state)) {
          // The socket sends the end; give it a moment, then fall back to polling.
          if (++this._endWaits > 5) {
            this._socket?.close();
            this._socket = null;
          }
        }
      } catch (error) {
        if (error instanceof ServerConnection.ResponseError && error.response.status === 404) {
          this.callbacks.onLost(error.message);
          this.stop();
          return;
        }
        if (++failures >= 30) {
          this.callbacks.onLost(String((error as Error).message ?? error));
          this.stop();
          return;
        }
      }
      await new Promise<void>(resolve => {
        this._wake = resolve;
        this._timer = setTimeout(resolve, POLL_INTERVAL_MS);
      });
    }
  }

  private _stopped = false;
  private _socket: WebSocket | null = null;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _wake: (() => void) | null = null;
  private _endWaits = 0;
}

/** What is remembered of a followed task across page reloads. */
export interface IStoredTask {
  id: string;
  kind: string;
  prefix: string;
  offset: number;
  lines: string[];
  state: string;
}

/** Lines remembered per task in storage. */
export const STORED_LINES = 200;

/** Remembers followed tasks in a `Storage` (localStorage), one list per server. */
export class TaskStore {
  constructor(
    private storage: Storage | null,
    baseUrl: string
  ) {
    this.key = `jupyter-envs:tasks:${baseUrl}`;
  }

  readonly key: string;

  /** The remembered tasks, oldest first. */
  load(): IStoredTask[] {
    if (!this.storage) {
      return [];
    }
    try {
      const data = JSON.parse(this.storage.getItem(this.key) ?? '[]');
      return Array.isArray(data)
        ? data.filter(t => t && typeof t.id === 'string' && typeof t.offset === 'number')
        : [];
    } catch {
      return [];
    }
  }

  /** Remember these tasks (replacing what was remembered). */
  save(tasks: IStoredTask[]): void {
    if (!this.storage) {
      return;
    }
    const trimmed = tasks.slice(-10).map(t => ({ ...t, lines: t.lines.slice(-STORED_LINES) }));
    try {
      if (trimmed.length) {
        this.storage.setItem(this.key, JSON.stringify(trimmed));
      } else {
        this.storage.removeItem(this.key);
      }
    } catch (error) {
      console.warn('jupyter-envs: cannot remember tasks', error);
    }
  }
}
