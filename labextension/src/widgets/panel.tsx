/**
 * The sidebar panel: renders the model with the components.
 */
import * as React from 'react';
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, showErrorMessage, VDomRenderer } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { errorMessage } from '../api';
import { CSS } from '../classes';
import { CreateForm } from '../components/CreateForm';
import { EnvDetailsView } from '../components/EnvDetails';
import { EnvList } from '../components/EnvList';
import { GpuView } from '../components/GpuView';
import { TaskList } from '../components/TaskList';
import { ICurrentNotebook, IPanelContext } from '../components/context';
import { EnvsModel, IExportFile } from '../model';
import { IGpuChoice } from '../types';

/** The panel's sidebar icon: a stack of boxes (environments). */
export const envsIcon = new LabIcon({
  name: 'jupyter-envs:envs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161"><path d="M12 2 3 6.5 12 11l9-4.5L12 2zm-9 9 9 4.5 9-4.5V13l-9 4.5L3 13v-2zm0 5 9 4.5 9-4.5V18l-9 4.5L3 18v-2z"/></g></svg>'
});

/** The metadata key a notebook's GPU choice lives under (jupyter_envs.gpu.prefs). */
const METADATA_KEY = 'jupyter_envs';

/** The parts of a notebook panel the GPU choice needs (duck-typed: no notebook dependency). */
interface INotebookLike {
  context: {
    path: string;
    save(): Promise<void>;
    model: {
      getMetadata(key: string): any;
      setMetadata(key: string, value: any): void;
      deleteMetadata(key: string): void;
    };
  };
}

function asNotebook(widget: unknown): INotebookLike | null {
  const context = (widget as any)?.context;
  return context && typeof context.path === 'string' && context.path.endsWith('.ipynb') &&
    typeof context.model?.getMetadata === 'function'
    ? (widget as INotebookLike)
    : null;
}

/**
 * The environments sidebar panel.
 */
export class EnvsPanel extends VDomRenderer<EnvsModel> {
  constructor(options: EnvsPanel.IOptions) {
    super(options.model);
    this._app = options.app;
    this._trans = options.trans;
    this.id = 'jp-Envs-panel';
    this.title.icon = envsIcon;
    this.title.caption = this._trans.__('Conda Environments');
    this.addClass(CSS.panel);
    const app = this._app;
    // The current notebook matters to the GPU view: re-render when it changes.
    const shell = app.shell as any;
    shell.currentChanged?.connect(() => this.update(), this);
    this.model.onTaskDone(() => void app.serviceManager.kernelspecs.refreshSpecs());
    this._ctx = {
      model: this.model,
      trans: this._trans,
      kernelFor: (prefix: string) => {
        const specs = app.serviceManager.kernelspecs.specs?.kernelspecs ?? {};
        for (const [name, spec] of Object.entries(specs)) {
          if ((spec?.metadata as any)?.conda_env_path === prefix) {
            return name;
          }
        }
        return null;
      },
      openNotebook: async (kernelName: string) => {
        await app.commands.execute('notebook:create-new', { kernelName });
      },
      currentNotebook: () => this.currentNotebook(),
      download: (file: IExportFile) => {
        const blob = new Blob([file.text], { type: file.mediaType });
        const url = URL.createObjectURL(blob);
        const a = document.createElement('a');
        a.href = url;
        a.download = file.filename;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      },
      showError: (title: string, error: unknown) => {
        void showErrorMessage(title, errorMessage(error), [Dialog.okButton()]);
      }
    };
    void this.model.initialize();
    void app.serviceManager.kernelspecs.ready.then(() => this.update());
    app.serviceManager.kernelspecs.specsChanged.connect(() => this.update(), this);
  }

  private currentNotebook(): ICurrentNotebook | null {
    const widget = asNotebook(this._app.shell.currentWidget);
    if (!widget) {
      return null;
    }
    const model = widget.context.model;
    const ours = model.getMetadata(METADATA_KEY) ?? {};
    return {
      path: widget.context.path,
      gpu: (ours.gpu as IGpuChoice | undefined) ?? null,
      setGpu: async (choice: IGpuChoice | null) => {
        const next = { ...(model.getMetadata(METADATA_KEY) ?? {}) };
        if (choice) {
          next.gpu = choice;
        } else {
          delete next.gpu;
        }
        if (Object.keys(next).length) {
          model.setMetadata(METADATA_KEY, next);
        } else {
          model.deleteMetadata(METADATA_KEY);
        }
        await widget.context.save();
      }
    };
  }

  protected render(): JSX.Element {
    const model = this.model;
    const trans = this._trans;
    const ctx = this._ctx;
    const readOnly = model.config?.read_only ?? false;
    let body: JSX.Element;
    switch (model.view) {
      case 'create':
        body = <CreateForm ctx={ctx} />;
        break;
      case 'details':
        body = <EnvDetailsView ctx={ctx} />;
        break;
      case 'gpus':
        body = <GpuView ctx={ctx} />;
        break;
      default:
        body = <EnvList ctx={ctx} />;
    }
    return (
      <div>
        <div className={CSS.header}>
          <h2 className={CSS.title}>{trans.__('Conda Environments')}</h2>
          <div className={CSS.toolbar} role="toolbar" aria-label={trans.__('Environment actions')}>
            <button
              className={`${CSS.button} ${CSS.primary}`}
              disabled={readOnly}
              title={readOnly ? trans.__('The server is read-only') : trans.__('Create a new environment')}
              onClick={() => (model.view = 'create')}
            >
              {trans.__('New')}
            </button>
            <button
              className={CSS.button}
              onClick={() => {
                void model.refresh(true);
                void model.loadDetails();
              }}
              disabled={model.loading}
              title={trans.__('Look for environments on disk again')}
            >
              {trans.__('Refresh')}
            </button>
            <button
              className={CSS.button}
              onClick={() => {
                model.view = 'gpus';
                void model.loadGpus();
              }}
              title={trans.__('GPUs and who uses them')}
            >
              {trans.__('GPUs')}
            </button>
          </div>
          {model.config && (
            <p className={CSS.hint}>
              {trans.__('Engine: %1', model.config.backend)}
              {readOnly ? ` · ${trans.__('read-only')}` : ''}
            </p>
          )}
        </div>
        {model.error && (
          <div className={CSS.error} role="alert">
            {model.error}{' '}
            <button className={CSS.button} onClick={() => model.clearError()}>
              {trans.__('Dismiss')}
            </button>
          </div>
        )}
        <TaskList ctx={ctx} />
        {body}
      </div>
    );
  }

  private _app: JupyterFrontEnd;
  private _trans: TranslationBundle;
  private _ctx: IPanelContext;
}

/** The panel's namespace. */
export namespace EnvsPanel {
  /** How to make a panel. */
  export interface IOptions {
    app: JupyterFrontEnd;
    model: EnvsModel;
    trans: TranslationBundle;
  }
}
