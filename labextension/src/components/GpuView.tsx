/**
 * GPUs: each GPU's memory, utilization and holding kernels; GPU choices.
 */
import * as React from 'react';

import { CSS } from '../classes';
import { formatBytes } from '../format';
import { IGpu, IGpuChoice } from '../types';
import { IPanelContext } from './context';

/** How often the GPU view reloads the inventory, in milliseconds. */
export const GPU_REFRESH_MS = 5000;

/** A choice as the <select> knows it. */
function choiceKey(choice: IGpuChoice | null): string {
  if (!choice) {
    return 'default';
  }
  if (choice.mode === 'auto') {
    return `auto:${choice.count ?? 1}`;
  }
  if (choice.mode === 'devices') {
    return `devices:${(choice.devices ?? []).join(',')}`;
  }
  return choice.mode;
}

function choiceFromKey(key: string): IGpuChoice | null {
  if (key === 'default') {
    return null;
  }
  if (key.startsWith('auto:')) {
    return { mode: 'auto', count: Number(key.slice(5)) || 1 };
  }
  if (key.startsWith('devices:')) {
    return { mode: 'devices', devices: key.slice(8).split(',').filter(Boolean) };
  }
  return { mode: key as IGpuChoice['mode'] };
}

/** A <select> of GPU choices: default, all, none, N free GPUs, one specific GPU. */
export function GpuChoiceEditor(props: {
  ctx: IPanelContext;
  choice: IGpuChoice | null;
  onChange: (choice: IGpuChoice | null) => void | Promise<void>;
  label?: string;
}): JSX.Element {
  const { ctx, choice } = props;
  const { trans, model } = ctx;
  const gpus = model.gpus?.gpus ?? [];
  React.useEffect(() => {
    if (!model.gpus) {
      void model.loadGpus();
    }
  }, []);
  const key = choiceKey(choice);
  const options: [string, string][] = [
    ['default', trans.__('Default (all GPUs)')],
    ['all', trans.__('All GPUs')],
    ['none', trans.__('No GPU (CPU only)')]
  ];
  for (let n = 1; n <= Math.max(1, gpus.length); n++) {
    options.push([`auto:${n}`, trans._n('%1 free GPU, held while the kernel runs', '%1 free GPUs, held while the kernel runs', n)]);
  }
  for (const gpu of gpus) {
    options.push([`devices:${gpu.uuid}`, trans.__('GPU %1 only (%2)', gpu.index, gpu.name)]);
  }
  if (!options.some(([k]) => k === key)) {
    options.push([key, key]);
  }
  return (
    <label className={CSS.field}>
      {props.label ?? trans.__('GPU choice')}
      <select value={key} onChange={e => void props.onChange(choiceFromKey(e.target.value))}>
        {options.map(([k, label]) => (
          <option key={k} value={k}>
            {label}
          </option>
        ))}
      </select>
    </label>
  );
}

function Meter(props: { label: string; value: number | null; text: string }): JSX.Element {
  const value = props.value === null ? 0 : Math.max(0, Math.min(100, props.value));
  return (
    <div className={CSS.meter} role="meter" aria-label={props.label} aria-valuenow={value} aria-valuemin={0} aria-valuemax={100}>
      <div className={CSS.meterFill} style={{ width: `${value}%` }} />
      <span>
        {props.label}: {props.text}
      </span>
    </div>
  );
}

function GpuItem(props: { gpu: IGpu; ctx: IPanelContext }): JSX.Element {
  const { gpu, ctx } = props;
  const { trans } = ctx;
  const total = gpu.memory_total ?? null;
  const used = gpu.memory_used ?? null;
  const memPct = total && used !== null ? (100 * used) / total : null;
  const kernels = gpu.kernels ?? [];
  return (
    <li className={CSS.gpu} data-gpu-index={gpu.index}>
      <strong>
        {gpu.index}: {gpu.name}
      </strong>
      <Meter
        label={trans.__('Memory')}
        value={memPct}
        text={total !== null ? `${formatBytes(used)} / ${formatBytes(total)}` : trans.__('unknown')}
      />
      <Meter
        label={trans.__('Utilization')}
        value={gpu.utilization ?? null}
        text={gpu.utilization !== null && gpu.utilization !== undefined ? `${gpu.utilization}%` : trans.__('unknown')}
      />
      <div className={CSS.itemMeta}>
        {kernels.length
          ? kernels.map(k => (
              <span key={k.kernel_id} className={CSS.badge} title={k.kernel_id}>
                {trans.__('kernel %1', k.kernel_id.slice(0, 8))}
                {k.exclusive ? ` ${trans.__('(held)')}` : ''}
                {k.memory !== null ? ` ${formatBytes(k.memory)}` : ''}
                {k.this_server ? '' : ` ${trans.__('(other server)')}`}
              </span>
            ))
          : trans.__('No kernel uses it.')}
      </div>
    </li>
  );
}

/** The GPU view: inventory and the choice for the current notebook. */
export function GpuView(props: { ctx: IPanelContext }): JSX.Element {
  const { ctx } = props;
  const { model, trans } = ctx;
  const overview = model.gpus;
  const notebook = ctx.currentNotebook();
  const [, setTick] = React.useState(0);
  // Memory and utilization change all the time: refresh while the view shows.
  React.useEffect(() => {
    const timer = setInterval(() => void model.loadGpus(), GPU_REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  return (
    <div className={CSS.details}>
      <div className={CSS.toolbar}>
        <button className={CSS.button} onClick={() => (model.view = 'list')}>
          {trans.__('← All environments')}
        </button>
        <button className={CSS.button} onClick={() => void model.loadGpus()}>
          {trans.__('Refresh')}
        </button>
      </div>
      <h3>{trans.__('GPUs')}</h3>
      {!overview ? (
        <p className={CSS.hint}>{trans.__('Loading…')}</p>
      ) : (
        <>
          {overview.error && <p className={CSS.error}>{overview.error}</p>}
          {overview.gpus.length === 0 ? (
            <p className={CSS.empty}>{trans.__('No GPU on this server.')}</p>
          ) : (
            <ul className={CSS.list}>
              {overview.gpus.map(gpu => (
                <GpuItem key={gpu.uuid} gpu={gpu} ctx={ctx} />
              ))}
            </ul>
          )}
          {overview.driver_version && (
            <p className={CSS.hint}>
              {trans.__('Driver %1, CUDA %2', overview.driver_version, overview.cuda_version ?? '?')}
            </p>
          )}
        </>
      )}
      <section className={CSS.section} aria-label={trans.__('Current notebook')}>
        <h4>{trans.__('Current notebook')}</h4>
        {notebook ? (
          <>
            <p className={CSS.prefix}>{notebook.path}</p>
            <GpuChoiceEditor
              ctx={ctx}
              choice={notebook.gpu}
              label={trans.__('GPUs for this notebook (applies at the next kernel restart)')}
              onChange={async choice => {
                try {
                  await notebook.setGpu(choice);
                  setTick(t => t + 1);
                } catch (e) {
                  ctx.showError(trans.__('Cannot set the GPU choice'), e);
                }
              }}
            />
          </>
        ) : (
          <p className={CSS.hint}>{trans.__('Open a notebook to choose its GPUs.')}</p>
        )}
      </section>
    </div>
  );
}
