/**
 * An environment's packages (conda and pip, requested or pulled in), changed through a preview.
 */
import * as React from 'react';

import { errorMessage } from '../api';
import { CSS } from '../classes';
import { planSummary } from '../format';
import { ChangeAction, IEnvDetails, IPackageHit, IPlan } from '../types';
import { checkSpecs, parseSpecs } from '../validate';
import { IPanelContext } from './context';
import { PlanView } from './PlanView';

interface IPending {
  action: ChangeAction;
  specs: string[];
  plan: IPlan | null;
  error: string | null;
}

/** Package names matching what is being typed (debounced; none for short or bad input). */
function useSuggestions(ctx: IPanelContext, typed: string): IPackageHit[] {
  const [hits, setHits] = React.useState<IPackageHit[]>([]);
  const query = /^[a-z0-9_.-]{2,}$/i.test(typed) ? typed.toLowerCase() : '';
  React.useEffect(() => {
    if (!query) {
      setHits([]);
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      ctx.model.searchPackages(query).then(
        found => current && setHits(found),
        // Suggestions are a convenience: a failed search only means none are shown.
        () => current && setHits([])
      );
    }, 250);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [query]);
  return hits;
}

/** The package table with install / update / remove. */
export function Packages(props: { ctx: IPanelContext; env: IEnvDetails }): JSX.Element {
  const { ctx, env } = props;
  const { model, trans } = ctx;
  const [filter, setFilter] = React.useState('');
  const [installText, setInstallText] = React.useState('');
  const [pending, setPending] = React.useState<IPending | null>(null);
  const [running, setRunning] = React.useState(false);
  const mutable = !env.protected && !(model.config?.read_only ?? false);
  const requested = new Set(env.requested_specs.map(s => s.split(/[\s<>=!~[]/)[0].toLowerCase()));
  const installSpecs = parseSpecs(installText);
  const suggestions = useSuggestions(ctx, installSpecs[installSpecs.length - 1] ?? '');
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
              list="jp-Envs-package-suggestions"
              value={installText}
              aria-invalid={!!installProblem}
              onChange={e => setInstallText(e.target.value)}
            />
          </label>
          <datalist id="jp-Envs-package-suggestions">
            {suggestions.map(hit => (
              <option key={hit.name} value={hit.name}>
                {hit.latest}
              </option>
            ))}
          </datalist>
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

