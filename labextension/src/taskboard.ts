/**
 * The tasks the panel follows: submitted here or found again after a page reload,
 * each with the log shown so far, remembered in localStorage.
 */
import { ServerConnection } from '@jupyterlab/services';

import { errorMessage, requestAPI } from './api';
import { appendChunk, ILogChunk, IStoredTask, TaskFollower, TaskStore } from './tasks';
import { FINAL_STATES, ITask } from './types';

/** A task the panel follows, with the log it has shown so far. */
export interface ITaskView {
  task: ITask;
  lines: string[];
  offset: number;
  /** Set when the task could not be followed any more. */
  lost?: string;
}

/**
 * Follows tasks and remembers them; calls `changed` on every change and `finished` once
 * per task that reaches a final state while followed.
 */
export class TaskBoard {
  constructor(
    private settings: ServerConnection.ISettings,
    storage: Storage | null,
    private useWebSocket: boolean,
    private changed: () => void,
    private finished: (task: ITask) => void
  ) {
    this._store = new TaskStore(storage, settings.baseUrl);
  }

  /** Tasks followed, newest first. */
  get views(): ITaskView[] {
    return [...this._tasks.values()].reverse();
  }

  /** The running (or queued) task on an environment prefix, if any. */
  busy(prefix: string): ITaskView | null {
    for (const view of this._tasks.values()) {
      if (view.task.prefix === prefix && !FINAL_STATES.has(view.task.state)) {
        return view;
      }
    }
    return null;
  }

  /** Start a long operation (a request answered 202 with a task) and follow it. */
  async submit(endPoint: string, init: RequestInit): Promise<ITaskView> {
    const { data } = await requestAPI<ITask>(endPoint, init, this.settings);
    const view: ITaskView = { task: data, lines: [], offset: 0 };
    this._tasks.set(data.id, view);
    this.follow(view);
    this.persist();
    this.changed();
    return view;
  }

  /** Cancel a task. Throws the server's error. */
  async cancel(tid: string): Promise<void> {
    const { data } = await requestAPI<ITask>(`tasks/${tid}`, { method: 'DELETE' }, this.settings);
    this.update(data);
  }

  /** Stop showing a finished task. */
  dismiss(tid: string): void {
    const view = this._tasks.get(tid);
    if (view && FINAL_STATES.has(view.task.state)) {
      this._tasks.delete(tid);
      this.persist();
      this.changed();
    }
  }

  /**
   * Re-attach to remembered tasks at their last offset, and follow running tasks the
   * server knows. Returns an error message when the server could not be asked.
   */
  async restore(): Promise<string | null> {
    let problem: string | null = null;
    for (const s of this._store.load()) {
      if (this._tasks.has(s.id)) {
        continue;
      }
      const view: ITaskView = {
        task: { id: s.id, kind: s.kind, prefix: s.prefix, state: s.state as ITask['state'] },
        lines: s.lines,
        offset: s.offset
      };
      this._tasks.set(s.id, view);
      if (!FINAL_STATES.has(s.state)) {
        this.follow(view);
      }
    }
    try {
      const { data } = await requestAPI<ITask[]>('tasks', {}, this.settings);
      for (const task of data) {
        if (!this._tasks.has(task.id) && !FINAL_STATES.has(task.state)) {
          const view: ITaskView = { task, lines: [], offset: 0 };
          this._tasks.set(task.id, view);
          this.follow(view);
        }
      }
    } catch (error) {
      problem = errorMessage(error);
    }
    this.persist();
    this.changed();
    return problem;
  }

  /** Stop following every task. */
  dispose(): void {
    for (const follower of this._followers.values()) {
      follower.stop();
    }
    this._followers.clear();
  }

  private follow(view: ITaskView): void {
    const tid = view.task.id;
    this._followers.get(tid)?.stop();
    const follower = new TaskFollower(
      tid,
      view.offset,
      {
        onLines: (chunk: ILogChunk) => {
          const current = this._tasks.get(tid);
          if (!current) {
            return;
          }
          const next = appendChunk(current.lines, current.offset, chunk);
          current.lines = next.lines;
          current.offset = next.offset;
          this.persist();
          this.changed();
        },
        onTask: (task: ITask) => this.update(task),
        onLost: (message: string) => {
          const current = this._tasks.get(tid);
          if (current) {
            current.lost = message;
            // The server no longer knows the task (it restarted): say so, stop following.
            current.task = { ...current.task, state: 'failed', error: current.task.error ?? message };
          }
          this._followers.delete(tid);
          this.persist();
          this.changed();
        }
      },
      this.settings,
      this.useWebSocket
    );
    this._followers.set(tid, follower);
    follower.start();
  }

  private update(task: ITask): void {
    const view = this._tasks.get(task.id);
    if (!view) {
      return;
    }
    const wasFinal = FINAL_STATES.has(view.task.state);
    view.task = task;
    this.persist();
    this.changed();
    if (!wasFinal && FINAL_STATES.has(task.state)) {
      this._followers.delete(task.id);
      this.finished(task);
    }
  }

  private persist(): void {
    const stored: IStoredTask[] = [...this._tasks.values()].map(v => ({
      id: v.task.id,
      kind: v.task.kind,
      prefix: v.task.prefix,
      offset: v.offset,
      lines: v.lines,
      state: v.task.state
    }));
    this._store.save(stored);
  }

  private _tasks = new Map<string, ITaskView>();
  private _followers = new Map<string, TaskFollower>();
  private _store: TaskStore;
}
