/**
 * The state of the environments panel. Components render it; it emits `stateChanged`.
 */
import { VDomModel } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { errorMessage, jsonInit, requestAPI } from './api';
import { filterEnvs, sortEnvs } from './format';
import { ITaskView, TaskBoard } from './taskboard';
import {
  ChangeAction,
  ExportFormat,
  ICreateRequest,
  IConfig,
  IEnvDetails,
  IEnvGpu,
  IEnvInfo,
  IGpuChoice,
  IGpuOverview,
  IPackageHit,
  IPlan,
  IRevision,
  ITask
} from './types';

/** Which part of the panel shows. */
export type View = 'list' | 'create' | 'details' | 'gpus';

export type { ITaskView } from './taskboard';

/** A file an export produced. */
export interface IExportFile {
  text: string;
  filename: string;
  mediaType: string;
}

/** The filename in a Content-Disposition header, if any. */
export function dispositionFilename(header: string | null): string | null {
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header ?? '');
  return match ? decodeURIComponent(match[1]) : null;
}

/** Whether an environment holds packages built for CUDA GPUs. */
export function hasCudaBuilds(details: IEnvDetails): boolean {
  const cudaNames = new Set(['cuda-version', 'cudatoolkit', 'cuda-runtime', 'cuda-cudart']);
  return details.packages.some(p => cudaNames.has(p.name) || /(^|_)cuda\d*/.test(p.build));
}

/**
 * The panel's model: environments, the selected one, followed tasks and GPUs.
 */
export class EnvsModel extends VDomModel {
  constructor(options: EnvsModel.IOptions = {}) {
    super();
    this.settings = options.settings ?? ServerConnection.makeSettings();
    this._board = new TaskBoard(
      this.settings,
      options.storage === undefined ? globalThis.localStorage ?? null : options.storage,
      options.useWebSocket ?? true,
      () => this.stateChanged.emit(),
      task => void this.afterTask(task)
    );
  }

  /** How the model reaches the server. */
  readonly settings: ServerConnection.ISettings;

  /** Every environment, sorted (root first, then by name). */
  get envs(): IEnvInfo[] {
    return this._envs;
  }

  /** The environments the filter lets through. */
  get visibleEnvs(): IEnvInfo[] {
    return filterEnvs(this._envs, this._filter);
  }

  /** The filter box's text. */
  get filter(): string {
    return this._filter;
  }
  set filter(value: string) {
    if (value !== this._filter) {
      this._filter = value;
      this.stateChanged.emit();
    }
  }

  /** Which part of the panel shows. */
  get view(): View {
    return this._view;
  }
  set view(value: View) {
    if (value !== this._view) {
      this._view = value;
      this.stateChanged.emit();
    }
  }

  /** Whether the environment list is being loaded. */
  get loading(): boolean {
    return this._loading;
  }

  /** The last error of a background load (list, details, GPUs), or null. */
  get error(): string | null {
    return this._error;
  }

  /** Forget the last error. */
  clearError(): void {
    this._error = null;
    this.stateChanged.emit();
  }

  /** The server's jupyter-envs configuration, once loaded. */
  get config(): IConfig | null {
    return this._config;
  }

  /** The id of the selected environment, or null. */
  get selectedId(): string | null {
    return this._selectedId;
  }

  /** The selected environment's details, once loaded. */
  get details(): IEnvDetails | null {
    return this._details;
  }

  /** The selected environment's revisions, once loaded. */
  get revisions(): IRevision[] | null {
    return this._revisions;
  }

  /** Tasks followed, newest first. */
  get tasks(): ITaskView[] {
    return this._board.views;
  }

  /** The running (or queued) task on an environment prefix, if any. */
  busyTask(prefix: string): ITaskView | null {
    return this._board.busy(prefix);
  }

  /** The GPUs and who holds them, once loaded. */
  get gpus(): IGpuOverview | null {
    return this._gpus;
  }

  /** The size in bytes of environment `id`, once known. */
  size(id: string): number | null {
    return this._extra.get(id)?.size ?? null;
  }

  /** Whether environment `id` holds CUDA builds (null until known). */
  gpuCapable(id: string): boolean | null {
    return this._extra.get(id)?.gpu ?? null;
  }

  /** Load the configuration, the environment list and remembered tasks. */
  async initialize(): Promise<void> {
    await Promise.all([this.loadConfig(), this.refresh(), this.restoreTasks()]);
  }

  /** Load the server's configuration. */
  async loadConfig(): Promise<void> {
    try {
      this._config = (await requestAPI<IConfig>('config', {}, this.settings)).data;
    } catch (error) {
      this._error = errorMessage(error);
    }
    this.stateChanged.emit();
  }

  /** Reload the environment list (`rescan` also looks at the disk again). */
  async refresh(rescan = false): Promise<void> {
    this._loading = true;
    this.stateChanged.emit();
    try {
      const { data } = await requestAPI<IEnvInfo[]>(
        rescan ? 'environments?refresh=1' : 'environments',
        {},
        this.settings
      );
      this._envs = sortEnvs(data);
      this._error = null;
      void this.enrich(this._envs.map(e => e.id));
      if (this._selectedId && !this._envs.some(e => e.id === this._selectedId)) {
        this._selectedId = null;
        this._details = null;
        if (this._view === 'details') {
          this._view = 'list';
        }
      }
    } catch (error) {
      this._error = errorMessage(error);
    } finally {
      this._loading = false;
      this.stateChanged.emit();
    }
  }

  /** Show one environment (null: back to the list). */
  async select(id: string | null): Promise<void> {
    this._selectedId = id;
    this._details = null;
    this._revisions = null;
    this._view = id ? 'details' : 'list';
    this.stateChanged.emit();
    if (id) {
      await this.loadDetails();
    }
  }

  /** (Re)load the selected environment's details, size included, and revisions. */
  async loadDetails(): Promise<void> {
    const id = this._selectedId;
    if (!id) {
      return;
    }
    try {
      const [details, revisions] = await Promise.all([
        requestAPI<IEnvDetails>(`environments/${id}?size=1`, {}, this.settings),
        requestAPI<IRevision[]>(`environments/${id}/revisions`, {}, this.settings)
      ]);
      if (id !== this._selectedId) {
        return;
      }
      this._details = details.data;
      this._revisions = [...revisions.data].sort((a, b) => b.number - a.number);
      this.learn(details.data);
      this._error = null;
    } catch (error) {
      this._error = errorMessage(error);
    }
    this.stateChanged.emit();
  }

  /** The dry-run plan of a create. Throws the server's error. */
  async previewCreate(req: ICreateRequest): Promise<IPlan> {
    return (await requestAPI<IPlan>('environments/preview', jsonInit('POST', req), this.settings))
      .data;
  }

  /** Start a create; the task is followed. Throws the server's error. */
  async create(req: ICreateRequest): Promise<ITaskView> {
    return this._board.submit('environments', jsonInit('POST', req));
  }

  /** The dry-run plan of a package change. Throws the server's error. */
  async previewChange(id: string, action: ChangeAction, specs: string[]): Promise<IPlan> {
    return (
      await requestAPI<IPlan>(
        `environments/${id}/preview`,
        jsonInit('POST', { action, specs }),
        this.settings
      )
    ).data;
  }

  /** Start a package change; the task is followed. */
  async change(id: string, action: ChangeAction, specs: string[]): Promise<ITaskView> {
    return this._board.submit(`environments/${id}/packages`, jsonInit('POST', { action, specs }));
  }

  /** Start cloning environment `id` into a new environment called `name`. */
  async clone(id: string, name: string): Promise<ITaskView> {
    return this._board.submit('environments', jsonInit('POST', { name, clone_from: id }));
  }

  /** Start deleting environment `id`. */
  async remove(id: string): Promise<ITaskView> {
    return this._board.submit(`environments/${id}`, jsonInit('DELETE'));
  }

  /** Start rolling environment `id` back to revision `n`. */
  async rollback(id: string, n: number): Promise<ITaskView> {
    return this._board.submit(`environments/${id}/revisions/${n}/rollback`, jsonInit('POST'));
  }

  /** An export of environment `id`. */
  async exportEnv(id: string, format: ExportFormat): Promise<IExportFile> {
    const { data, response } = await requestAPI<unknown>(
      `environments/${id}/export?format=${encodeURIComponent(format)}`,
      {},
      this.settings
    );
    const text = typeof data === 'string' ? data : JSON.stringify(data, null, 2);
    const env = this._envs.find(e => e.id === id);
    return {
      text,
      filename:
        dispositionFilename(response.headers.get('Content-Disposition')) ??
        `${env?.name ?? 'environment'}-${format}.txt`,
      mediaType: response.headers.get('Content-Type') ?? 'text/plain'
    };
  }

  /** Cancel a task. Throws the server's error. */
  async cancelTask(tid: string): Promise<void> {
    await this._board.cancel(tid);
  }

  /** Stop showing a finished task. */
  dismissTask(tid: string): void {
    this._board.dismiss(tid);
  }

  /** Package names in the channels that contain `query` (at most `limit`). */
  async searchPackages(query: string, limit = 20): Promise<IPackageHit[]> {
    const q = encodeURIComponent(query);
    return (await requestAPI<IPackageHit[]>(`packages?q=${q}&limit=${limit}`, {}, this.settings))
      .data;
  }

  /** Load the GPUs and who holds them. */
  async loadGpus(): Promise<void> {
    try {
      this._gpus = (await requestAPI<IGpuOverview>('gpus', {}, this.settings)).data;
      this._error = null;
    } catch (error) {
      const absent =
        error instanceof ServerConnection.ResponseError && error.response.status === 404;
      this._gpus = {
        gpus: [],
        error: absent ? 'This server does not report GPUs.' : errorMessage(error)
      };
    }
    this.stateChanged.emit();
  }

  /** Environment `id`'s GPU default. Throws the server's error. */
  async envGpu(id: string): Promise<IEnvGpu> {
    return (await requestAPI<IEnvGpu>(`environments/${id}/gpu`, {}, this.settings)).data;
  }

  /** Set (or with null, forget) environment `id`'s GPU default. Throws the server's error. */
  async setEnvGpu(id: string, choice: IGpuChoice | null): Promise<IEnvGpu> {
    if (choice === null) {
      await requestAPI<unknown>(`environments/${id}/gpu`, jsonInit('DELETE'), this.settings);
      return this.envGpu(id);
    }
    return (
      await requestAPI<IEnvGpu>(`environments/${id}/gpu`, jsonInit('PUT', choice), this.settings)
    ).data;
  }

  /** Re-attach to remembered tasks and to running tasks the server knows. */
  async restoreTasks(): Promise<void> {
    const problem = await this._board.restore();
    if (problem) {
      this._error = problem;
      this.stateChanged.emit();
    }
  }

  /** Stop following tasks. */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._board.dispose();
    super.dispose();
  }

  private async afterTask(task: ITask): Promise<void> {
    for (const env of this._envs) {
      if (env.prefix === task.prefix) {
        this._extra.delete(env.id);
      }
    }
    await this.refresh();
    const selected = this._envs.find(e => e.id === this._selectedId);
    if (selected && selected.prefix === task.prefix) {
      await this.loadDetails();
    }
    this._taskDone.forEach(cb => cb(task));
  }

  /** Call `cb` whenever a followed task finishes (after the list is refreshed). */
  onTaskDone(cb: (task: ITask) => void): () => void {
    this._taskDone.add(cb);
    return () => this._taskDone.delete(cb);
  }

  /** Learn sizes and GPU builds of the listed environments, one at a time, in the background. */
  private async enrich(ids: string[]): Promise<void> {
    for (const id of ids.slice(0, 100)) {
      if (this.isDisposed || this._extra.has(id)) {
        continue;
      }
      try {
        const { data } = await requestAPI<IEnvDetails>(
          `environments/${id}?size=1`,
          {},
          this.settings
        );
        this.learn(data);
        this.stateChanged.emit();
      } catch (error) {
        // The environment may have gone meanwhile; the list refresh says so.
        this._extra.set(id, { size: null, gpu: null });
      }
    }
  }

  private learn(details: IEnvDetails): void {
    this._extra.set(details.id, {
      size: typeof details.size_bytes === 'number' ? details.size_bytes : null,
      gpu: hasCudaBuilds(details)
    });
  }

  private _envs: IEnvInfo[] = [];
  private _filter = '';
  private _view: View = 'list';
  private _loading = false;
  private _error: string | null = null;
  private _config: IConfig | null = null;
  private _selectedId: string | null = null;
  private _details: IEnvDetails | null = null;
  private _revisions: IRevision[] | null = null;
  private _gpus: IGpuOverview | null = null;
  private _extra = new Map<string, { size: number | null; gpu: boolean | null }>();
  private _taskDone = new Set<(task: ITask) => void>();
  private _board: TaskBoard;
}

/** The model's namespace. */
export namespace EnvsModel {
  /** How to make a model. */
  export interface IOptions {
    /** Server settings (default: JupyterLab's). */
    settings?: ServerConnection.ISettings;
    /** Where followed tasks are remembered (default: localStorage; null: nowhere). */
    storage?: Storage | null;
    /** Follow logs over the WebSocket (default) or only by polling. */
    useWebSocket?: boolean;
  }
}
