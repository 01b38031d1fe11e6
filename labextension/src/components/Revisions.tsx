/**
 * An environment's revision history, with rollback.
 */
import * as React from 'react';
import { Dialog, showDialog } from '@jupyterlab/apputils';

import { CSS } from '../classes';
import { IEnvDetails } from '../types';
import { IPanelContext } from './context';

/** The revisions, newest first, each with a rollback button. */
export function Revisions(props: { ctx: IPanelContext; env: IEnvDetails }): JSX.Element | null {
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

