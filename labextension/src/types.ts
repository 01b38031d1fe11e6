/**
 * The JSON shapes of the jupyter-envs REST API (see jupyter_envs/rest_api.yml).
 */

/** One conda package. */
export interface ICondaPackage {
  name: string;
  version: string;
  build: string;
  build_number?: number;
  channel?: string;
  subdir?: string;
  url?: string;
  size?: number | null;
  requested?: boolean;
}

/** A Python distribution that pip installed and no conda package owns. */
export interface IPipPackage {
  name: string;
  version: string;
}

/** One environment in the list. */
export interface IEnvInfo {
  id: string;
  name: string;
  prefix: string;
  is_root: boolean;
  protected: boolean;
  python_version: string | null;
  package_count: number;
  has_kernel: boolean;
  last_modified: number;
  size_bytes?: number | null;
  gpu_capable?: boolean;
}

/** Everything about one environment. */
export interface IEnvDetails extends IEnvInfo {
  packages: ICondaPackage[];
  pip_packages: IPipPackage[];
  requested_specs: string[];
  kernelspecs: string[];
  revision_count: number;
}

/** A package whose version or build changes. */
export interface IPackageChange {
  name: string;
  old: ICondaPackage;
  new: ICondaPackage;
}

/** What an operation would do. */
export interface IPlan {
  install: ICondaPackage[];
  remove: ICondaPackage[];
  change: IPackageChange[];
}

/** One revision of conda-meta/history. */
export interface IRevision {
  number: number;
  date: string;
  command?: string;
  update_specs?: string[];
  remove_specs?: string[];
  added?: string[];
  removed?: string[];
}

/** The states a task goes through. */
export type TaskState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** States after which a task never changes again. */
export const FINAL_STATES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);

/** The progress of a task. */
export interface IProgress {
  phase: string;
  done: number;
  total: number | null;
}

/** A long operation on the server. */
export interface ITask {
  id: string;
  kind: string;
  prefix: string;
  state: TaskState;
  progress?: IProgress | null;
  result?: unknown;
  error?: string | null;
  message?: string | null;
}

/** The server's jupyter-envs configuration. */
export interface IConfig {
  backend: string;
  channels: string[];
  read_only: boolean;
  envs_dirs: string[];
}

/** A kernel holding or using a GPU. */
export interface IGpuKernel {
  kernel_id: string;
  exclusive: boolean;
  memory: number | null;
  this_server: boolean;
}

/** One GPU as the server sees it. */
export interface IGpu {
  index: number;
  uuid: string;
  name: string;
  memory_total?: number | null;
  memory_used?: number | null;
  utilization?: number | null;
  kernels?: IGpuKernel[];
}

/** `GET gpus`. */
export interface IGpuOverview {
  driver_version?: string | null;
  cuda_version?: string | null;
  error?: string | null;
  gpus: IGpu[];
}

/** Which GPUs a kernel sees. */
export interface IGpuChoice {
  mode: 'all' | 'none' | 'devices' | 'auto';
  devices?: string[];
  count?: number;
}

/** `GET environments/{id}/gpu`. */
export interface IEnvGpu {
  id: string;
  prefix: string;
  choice: IGpuChoice | null;
  effective: IGpuChoice;
  cuda_compat?: string | null;
}

/** The export formats the server writes. */
export type ExportFormat = 'yml' | 'from-history' | 'lock' | 'explicit';

/** The package operations on an existing environment. */
export type ChangeAction = 'install' | 'update' | 'remove';

/** The body of a create request (and of a create preview). */
export interface ICreateRequest {
  name?: string;
  prefix?: string;
  specs?: string[];
  environment_yml?: string;
  lockfile?: string;
  clone_from?: string;
  channels?: string[];
}

/** A package name found in the channels (`GET packages?q=`). */
export interface IPackageHit {
  name: string;
  latest: string;
  versions: string[];
  channels: string[];
  subdirs: string[];
}
