/**
 * One environment: actions, packages (change through a preview), GPU default, revisions.
 */
import * as React from 'react';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { errorMessage } from '../api';
import { CSS } from '../classes';
import { formatBytes, planSummary } from '../format';
import { ChangeAction, ExportFormat, IEnvDetails, IEnvGpu, IPlan } from '../types';
import { checkEnvName, checkSpecs, parseSpecs } from '../validate';
import { NameInput } from '../widgets/dialogs';
import { IPanelContext } from './context';
import { GpuChoiceEditor } from './GpuView';
import { PlanView } from './PlanView';

interface IPending {
  action: ChangeAction;
  specs: string[];
  plan: IPlan | null;
  error: string | null;
}

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

function Packages(props: { ctx: IPanelContext; env: IEnvDetails }): JSX.Element {
  const { ctx, env } = props;
  const { model, trans } = ctx;
  const [filter, setFilter] = React.useState('');
  const [installText, setInstallText] = React.useState('');
  const [pending, setPending] = React.useState<IPending | null>(null);
  const [running, setRunning] = React.useState(false);
  const mutable = !env.protected && !(model.config?.read_only ?? false);
  const requested = new Set(env.requested_specs.map(s => s.split(/[\s<>=!~[]/)[0].toLowerCase()));
  const installSpecs = parseSpecs(installText);
  const installProblem = installText.trim() ? checkSpecs(installSpecs) : null;

  const ask = async (action: ChangeAction, specs: string[]) => {
    setPending({ action, specs, plan: null, error: null });
    try {
      const plan = await model.previewChange(env.id, action, specs);
      setPending({ action, specs, plan, error: null });
    } catch (error) {
      setPending({ action, specs, plan: null, error: errorMessage(error) });
    }
  };

  const apply = async () => {
    if (!pending) {
      return;
    }
    setRunning(true);
    try {
      await model.change(env.id, pending.action, pending.specs);
      setPending(null);
      setInstallText('');
    } catch (error) {
      setPending({ ...pending, error: errorMessage(error) });
    } finally {
      setRunning(false);
    }
  };

  const words = filter.toLowerCase();
  const conda = env.packages.filter(p => p.name.toLowerCase().includes(words));
  const pip = env.pip_packages.filter(p => p.name.toLowerCase().includes(words));
  const actionLabel = { install: trans.__('Install'), update: trans.__('Update'), remove: trans.__('Remove') };

  return (
    <section className={CSS.section} aria-label={trans.__('Packages')}>
      <h4>{trans.__('Packages')}</h4>
      {mutable && (
        <form
          className={CSS.row}
          onSubmit={e => {
            e.preventDefault();
            if (installSpecs.length && !installProblem) {
              void ask('install', installSpecs);
            }
          }}
        >
          <label className={CSS.field}>
            <span className="jp-Envs-visuallyHidden">{trans.__('Packages to install')}</span>
            <input
              name="install"
              placeholder={trans.__('Add packages, e.g. numpy>=1.26')}
              value={installText}
              aria-invalid={!!installProblem}
              onChange={e => setInstallText(e.target.value)}
            />
          </label>
          <button
            type="submit"
            className={CSS.button}
            disabled={!installSpecs.length || !!installProblem}
          >
            {trans.__('Preview install')}
          </button>
        </form>
      )}
      {installProblem && (
        <span className={CSS.problem} role="alert">
          {trans.__(installProblem)}
        </span>
      )}
      {pending && (
        <div className={CSS.section} aria-live="polite">
          <strong>
            {actionLabel[pending.action]} {pending.specs.join(' ')}
          </strong>
          {pending.error ? (
            <div className={CSS.error} role="alert">
              {pending.error}
            </div>
          ) : pending.plan ? (
            <>
              <p className={CSS.hint}>{planSummary(pending.plan)}</p>
              <PlanView plan={pending.plan} trans={trans} />
            </>
          ) : (
            <p className={CSS.hint}>{trans.__('Solving…')}</p>
          )}
          <div className={CSS.toolbar}>
            <button className={CSS.button} onClick={() => setPending(null)}>
              {trans.__('Cancel')}
            </button>
            <button
              className={`${CSS.button} ${CSS.primary}`}
              disabled={!pending.plan || running}
              onClick={() => void apply()}
            >
              {trans.__('Apply')}
            </button>
          </div>
        </div>
      )}
      <label className={CSS.filter}>
        <span className="jp-Envs-visuallyHidden">{trans.__('Filter packages')}</span>
        <input
          type="search"
          placeholder={trans.__('Filter packages')}
          value={filter}
          onChange={e => setFilter(e.target.value)}
        />
      </label>
      <table className={CSS.table}>
        <thead>
          <tr>
            <th scope="col">{trans.__('Name')}</th>
            <th scope="col">{trans.__('Version')}</th>
            {mutable && <th scope="col">{trans.__('Actions')}</th>}
          </tr>
        </thead>
        <tbody>
          {conda.map(p => {
            const asked = p.requested || requested.has(p.name);
            return (
              <tr key={`c-${p.name}`} className={asked ? CSS.requested : ''} data-package={p.name}>
                <td
                  title={`${p.name}: ${asked ? trans.__('you asked for this package') : trans.__('pulled in as a dependency')}`}
                >
                  {p.name}
                  {asked ? ' ★' : ''}
                </td>
                <td title={`${p.version} ${p.build} ${p.channel ?? ''}`}>{p.version}</td>
                {mutable && (
                  <td>
                    <button
                      className={CSS.button}
                      aria-label={trans.__('Update %1', p.name)}
                      onClick={() => void ask('update', [p.name])}
                    >
                      ↑
                    </button>
                    <button
                      className={CSS.button}
                      aria-label={trans.__('Remove %1', p.name)}
                      onClick={() => void ask('remove', [p.name])}
                    >
                      ✕
                    </button>
                  </td>
                )}
              </tr>
            );
          })}
          {pip.map(p => (
            <tr key={`p-${p.name}`} data-package={p.name}>
              <td title={trans.__('Installed by pip')}>
                {p.name} <span className={CSS.badge}>{trans.__('pip')}</span>
              </td>
              <td>{p.version}</td>
              {mutable && <td />}
            </tr>
          ))}
        </tbody>
      </table>
      <p className={CSS.hint}>{trans.__('★ = requested by you; the others were pulled in as dependencies.')}</p>
    </section>
  );
}

function Revisions(props: { ctx: IPanelContext; env: IEnvDetails }): JSX.Element | null {
  const { ctx, env } = props;
  const { model, trans } = ctx;
  const revisions = model.revisions;
  if (!revisions || !revisions.length) {
    return null;
  }
  const mutable = !env.protected && !(model.config?.read_only ?? false);
  const rollback = async (n: number) => {
    const result = await showDialog({
      title: trans.__('Roll “%1” back to revision %2?', env.name, n),
      body: trans.__('The packages are put back exactly as they were at revision %1.', n),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: trans.__('Roll back') })]
    });
    if (result.button.accept) {
      await model.rollback(env.id, n).catch(e => ctx.showError(trans.__('Cannot roll back'), e));
    }
  };
  return (
    <section className={CSS.section} aria-label={trans.__('History')}>
      <h4>{trans.__('History')}</h4>
      <ol className={CSS.list} reversed>
        {revisions.map((r, i) => (
          <li key={r.number} className={CSS.item}>
            <span>
              <strong>{trans.__('Revision %1', r.number)}</strong> {r.date}
            </span>
            <span className={CSS.itemMeta}>
              {[
                ...(r.update_specs ?? []).map(s => `+${s}`),
                ...(r.remove_specs ?? []).map(s => `−${s}`)
              ].join(' ') ||
                trans._n('%1 package changed', '%1 packages changed', (r.added?.length ?? 0) + (r.removed?.length ?? 0))}
            </span>
            {mutable && i > 0 && (
              <button className={CSS.button} onClick={() => void rollback(r.number)}>
                {trans.__('Roll back to this')}
              </button>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}

function EnvGpu(props: { ctx: IPanelContext; env: IEnvDetails }): JSX.Element | null {
  const { ctx, env } = props;
  const { model, trans } = ctx;
  const [info, setInfo] = React.useState<IEnvGpu | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [absent, setAbsent] = React.useState(false);
  React.useEffect(() => {
    model.envGpu(env.id).then(setInfo, e => {
      // A server without the GPU routes: no GPU section at all.
      if (e instanceof ServerConnection.ResponseError && e.response.status === 404) {
        setAbsent(true);
      } else {
        setError(errorMessage(e));
      }
    });
  }, [env.id]);
  if (absent) {
    return null;
  }
  if (error) {
    return (
      <section className={CSS.section} aria-label={trans.__('GPUs')}>
        <h4>{trans.__('GPUs')}</h4>
        <div className={CSS.error}>{error}</div>
      </section>
    );
  }
  if (!info) {
    return null;
  }
  return (
    <section className={CSS.section} aria-label={trans.__('GPUs')}>
      <h4>{trans.__('GPUs for kernels of this environment')}</h4>
      {info.cuda_compat && <p className={CSS.error}>{info.cuda_compat}</p>}
      <GpuChoiceEditor
        ctx={ctx}
        choice={info.choice}
        onChange={async choice => {
          try {
            setInfo(await model.setEnvGpu(env.id, choice));
            setError(null);
          } catch (e) {
            ctx.showError(trans.__('Cannot set the GPU choice'), e);
          }
        }}
      />
    </section>
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
