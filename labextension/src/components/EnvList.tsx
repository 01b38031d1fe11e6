/**
 * The environment list with its filter box.
 */
import * as React from 'react';

import { CSS } from '../classes';
import { formatBytes } from '../format';
import { IEnvInfo } from '../types';
import { IPanelContext } from './context';

function EnvItem(props: { env: IEnvInfo; ctx: IPanelContext }): JSX.Element {
  const { env, ctx } = props;
  const { trans, model } = ctx;
  const size = model.size(env.id);
  const gpu = env.gpu_capable ?? model.gpuCapable(env.id);
  const busy = model.busyTask(env.prefix);
  return (
    <li className={CSS.item} data-env-name={env.name}>
      <button
        className={CSS.link}
        onClick={() => void model.select(env.id)}
        aria-label={trans.__('Open environment %1', env.name)}
      >
        <span className={CSS.itemName}>{env.name}</span>
        {env.protected && (
          <span className={`${CSS.badge} ${CSS.badgeProtected}`} title={trans.__('Protected: cannot be changed or deleted here')}>
            {trans.__('protected')}
          </span>
        )}
        {env.has_kernel && (
          <span className={`${CSS.badge} ${CSS.badgeKernel}`} title={trans.__('Has a Jupyter kernel')}>
            {trans.__('kernel')}
          </span>
        )}
        {gpu && (
          <span className={`${CSS.badge} ${CSS.badgeGpu}`} title={trans.__('Holds CUDA (GPU) builds')}>
            {trans.__('GPU')}
          </span>
        )}
        {busy && <span className={CSS.badge}>{trans.__('busy')}</span>}
        <span className={CSS.itemMeta}>
          {env.python_version ? trans.__('Python %1', env.python_version) : trans.__('no Python')}
          {' · '}
          {trans._n('%1 package', '%1 packages', env.package_count)}
          {size !== null ? ` · ${formatBytes(size)}` : ''}
        </span>
        <span className={CSS.prefix} title={env.prefix}>
          {env.prefix}
        </span>
      </button>
    </li>
  );
}

/** Filter box + list. */
export function EnvList(props: { ctx: IPanelContext }): JSX.Element {
  const { ctx } = props;
  const { model, trans } = ctx;
  const envs = model.visibleEnvs;
  return (
    <div>
      <label className={CSS.filter}>
        <span className="jp-Envs-visuallyHidden">{trans.__('Filter environments')}</span>
        <input
          type="search"
          placeholder={trans.__('Filter by name, path or Python version')}
          value={model.filter}
          onChange={e => (model.filter = e.target.value)}
        />
      </label>
      {envs.length === 0 ? (
        <p className={CSS.empty}>
          {model.loading
            ? trans.__('Loading environments…')
            : model.envs.length
              ? trans.__('No environment matches the filter.')
              : trans.__('No conda environments found. Create one with “New”.')}
        </p>
      ) : (
        <ul className={CSS.list} aria-label={trans.__('Environments')}>
          {envs.map(env => (
            <EnvItem key={env.id} env={env} ctx={ctx} />
          ))}
        </ul>
      )}
    </div>
  );
}
