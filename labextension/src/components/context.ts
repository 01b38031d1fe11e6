/**
 * What components need from JupyterLab, handed down from the panel.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { EnvsModel, IExportFile } from '../model';
import { IGpuChoice } from '../types';

/** The notebook open in the main area, as far as the panel needs it. */
export interface ICurrentNotebook {
  path: string;
  gpu: IGpuChoice | null;
  setGpu(choice: IGpuChoice | null): Promise<void>;
}

/** The panel's services for its components. */
export interface IPanelContext {
  model: EnvsModel;
  trans: TranslationBundle;
  /** The kernelspec name of an environment's kernel, if JupyterLab knows one. */
  kernelFor(prefix: string): string | null;
  /** Open a new notebook with the given kernel. */
  openNotebook(kernelName: string): Promise<void>;
  /** The notebook in the main area, or null. */
  currentNotebook(): ICurrentNotebook | null;
  /** Hand a file to the browser as a download. */
  download(file: IExportFile): void;
  /** Show an error in a dialog. */
  showError(title: string, error: unknown): void;
}
