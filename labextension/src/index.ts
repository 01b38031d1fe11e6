/**
 * jupyter-envs: wires the environments sidebar panel into JupyterLab.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { EnvsModel } from './model';
import { EnvsPanel } from './widgets/panel';

/** The command ids the extension registers. */
export namespace CommandIDs {
  export const open = 'jupyter-envs:open';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-envs:plugin',
  description: 'A sidebar panel for conda environments and their kernels.',
  autoStart: true,
  optional: [ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyter_envs');
    const model = new EnvsModel();
    const panel = new EnvsPanel({ app, model, trans });
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, panel.id);
    app.commands.addCommand(CommandIDs.open, {
      label: trans.__('Conda Environments'),
      execute: () => app.shell.activateById(panel.id)
    });
  }
};

export default plugin;
