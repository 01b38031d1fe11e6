/**
 * The sidebar panel.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

export class EnvsPanel extends Widget {
  constructor(options: { app: JupyterFrontEnd; trans: TranslationBundle }) {
    super();
    this.id = 'jp-Envs-panel';
    this.title.caption = options.trans.__('Conda Environments');
    this.title.label = options.trans.__('Envs');
    this.addClass('jp-Envs-Panel');
    this.node.textContent = options.trans.__('Conda Environments');
  }
}
