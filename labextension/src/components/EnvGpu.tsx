/**
 * An environment's default GPU choice.
 */
import * as React from 'react';
import { ServerConnection } from '@jupyterlab/services';

import { errorMessage } from '../api';
import { CSS } from '../classes';
import { IEnvDetails, IEnvGpu } from '../types';
import { IPanelContext } from './context';
import { GpuChoiceEditor } from './GpuView';

/** The GPU section of the details view (nothing on a server without GPU routes). */
export function EnvGpu(props: { ctx: IPanelContext; env: IEnvDetails }): JSX.Element | null {
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

