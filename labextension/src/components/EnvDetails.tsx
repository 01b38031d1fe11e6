/**
 * One environment: actions (notebook, clone, export, delete), GPU default, packages, history.
 */
import * as React from 'react';
import { Dialog, showDialog } from '@jupyterlab/apputils';

import { CSS } from '../classes';
import { formatBytes } from '../format';
import { ExportFormat, IEnvDetails } from '../types';
import { checkEnvName } from '../validate';
import { NameInput } from '../widgets/dialogs';
import { IPanelContext } from './context';
import { EnvGpu } from './EnvGpu';
import { Packages } from './Packages';
import { Revisions } from './Revisions';

function Actions(props: { ctx: IPanelContext; env: IEnvDetails }): JSX.Element {
  const { ctx, env } = props;
  const { model, trans } = ctx;
  const [format, setFormat] = React.useState<ExportFormat>('yml');
  const kernelName = ctx.kernelFor(env.prefix);
  const readOnly = model.config?.read_only ?? false;
  const busy = model.busyTask(env.prefix) !== null;

  const exportIt = async () => {
    try {
      ctx.download(await model.exportEnv(env.id, format));
    } catch (error) {
      ctx.showError(trans.__('Export failed'), error);
    }
  };

  const clone = async () => {
    let name = `${env.name}-copy`;
    for (;;) {
      const result = await showDialog({
        title: trans.__('Clone “%1”', env.name),
        body: new NameInput(name, trans.__('Name of the copy')),
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: trans.__('Clone') })]
      });
      if (!result.button.accept) {
        return;
      }
      name = result.value ?? '';
      const problem = checkEnvName(name) ?? (model.envs.some(e => e.name === name) ? 'exists' : null);
      if (!problem) {
        break;
      }
      await showDialog({
        title: trans.__('Cannot clone'),
        body: problem === 'exists' ? trans.__('“%1” exists already.', name) : trans.__(problem),
        buttons: [Dialog.okButton()]
      });
    }
    try {
      await model.clone(env.id, name);
    } catch (error) {
      ctx.showError(trans.__('Cannot clone'), error);
    }
  };

  const remove = async () => {
    const result = await showDialog({
      title: trans.__('Delete “%1”?', env.name),
      body: trans.__(
        'This deletes %1 and every package in it. Notebooks are not touched, but their kernel in this environment stops working.',
        env.prefix
      ),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: trans.__('Delete') })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await model.remove(env.id);
    } catch (error) {
      ctx.showError(trans.__('Cannot delete'), error);
    }
  };

  return (
    <div className={CSS.toolbar}>
      <button
        className={`${CSS.button} ${CSS.primary}`}
        disabled={!kernelName}
        title={
          kernelName
            ? trans.__('Open a new notebook running in this environment')
            : trans.__('This environment has no kernel: install ipykernel first')
        }
        onClick={() =>
          kernelName &&
          ctx.openNotebook(kernelName).catch(e => ctx.showError(trans.__('Cannot open a notebook'), e))
        }
      >
        {trans.__('New notebook')}
      </button>
      <button className={CSS.button} disabled={readOnly || busy} onClick={() => void clone()}>
        {trans.__('Clone…')}
      </button>
      <span className={CSS.row}>
        <label>
          <span className="jp-Envs-visuallyHidden">{trans.__('Export format')}</span>
          <select
            aria-label={trans.__('Export format')}
            value={format}
            onChange={e => setFormat(e.target.value as ExportFormat)}
          >
            <option value="yml">{trans.__('environment.yml (pinned)')}</option>
            <option value="from-history">{trans.__('environment.yml (what you asked for)')}</option>
            <option value="lock">{trans.__('lock file')}</option>
            <option value="explicit">{trans.__('explicit list (@EXPLICIT)')}</option>
          </select>
        </label>
        <button className={CSS.button} onClick={() => void exportIt()}>
          {trans.__('Download')}
        </button>
      </span>
      <button
        className={`${CSS.button} ${CSS.danger}`}
        disabled={env.protected || readOnly || busy}
        title={
          env.protected
            ? trans.__('Protected environments cannot be deleted here')
            : trans.__('Delete this environment')
        }
        onClick={() => void remove()}
      >
        {trans.__('Delete…')}
      </button>
    </div>
  );
}

/** The details view of the selected environment. */
export function EnvDetailsView(props: { ctx: IPanelContext }): JSX.Element {
  const { ctx } = props;
  const { model, trans } = ctx;
  const env = model.details;
  const info = model.envs.find(e => e.id === model.selectedId);
  return (
    <div className={CSS.details}>
      <div className={CSS.toolbar}>
        <button className={CSS.button} onClick={() => void model.select(null)}>
          {trans.__('← All environments')}
        </button>
      </div>
      <h3>{env?.name ?? info?.name ?? ''}</h3>
      {!env ? (
        <p className={CSS.hint}>{trans.__('Loading…')}</p>
      ) : (
        <>
          <p className={CSS.prefix} title={env.prefix}>
            {env.prefix}
          </p>
          <p className={CSS.itemMeta}>
            {env.python_version ? trans.__('Python %1', env.python_version) : trans.__('no Python')}
            {' · '}
            {trans._n('%1 package', '%1 packages', env.package_count)}
            {typeof env.size_bytes === 'number' ? ` · ${formatBytes(env.size_bytes)}` : ''}
            {env.protected ? ` · ${trans.__('protected')}` : ''}
          </p>
          <Actions ctx={ctx} env={env} />
          <EnvGpu ctx={ctx} env={env} />
          <Packages ctx={ctx} env={env} />
          <Revisions ctx={ctx} env={env} />
        </>
      )}
    </div>
  );
}
