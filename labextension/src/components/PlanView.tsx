/**
 * A dry-run plan: what would be installed, changed and removed.
 */
import * as React from 'react';
import { TranslationBundle } from '@jupyterlab/translation';

import { CSS } from '../classes';
import { planIsEmpty } from '../format';
import { ICondaPackage, IPlan } from '../types';

function pkg(p: ICondaPackage): string {
  return `${p.name} ${p.version} (${p.build})`;
}

/** Render a plan as three short lists. */
export function PlanView(props: { plan: IPlan; trans: TranslationBundle }): JSX.Element {
  const { plan, trans } = props;
  if (planIsEmpty(plan)) {
    return (
      <div className={CSS.plan} role="status">
        {trans.__('Nothing to change: the environment already matches.')}
      </div>
    );
  }
  return (
    <div className={CSS.plan} role="status" aria-label={trans.__('Planned changes')}>
      {plan.install.length > 0 && (
        <div className={CSS.planInstall}>
          <strong>{trans.__('Install (%1)', plan.install.length)}</strong>
          <ul>
            {plan.install.map(p => (
              <li key={p.name}>+ {pkg(p)}</li>
            ))}
          </ul>
        </div>
      )}
      {plan.change.length > 0 && (
        <div className={CSS.planChange}>
          <strong>{trans.__('Change (%1)', plan.change.length)}</strong>
          <ul>
            {plan.change.map(c => (
              <li key={c.name}>
                ~ {c.name} {c.old.version} → {c.new.version}
              </li>
            ))}
          </ul>
        </div>
      )}
      {plan.remove.length > 0 && (
        <div className={CSS.planRemove}>
          <strong>{trans.__('Remove (%1)', plan.remove.length)}</strong>
          <ul>
            {plan.remove.map(p => (
              <li key={p.name}>− {pkg(p)}</li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
