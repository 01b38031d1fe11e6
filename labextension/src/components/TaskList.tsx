/**
 * Running and recent operations: a progress bar, the live log, cancel.
 */
import * as React from 'react';

import { CSS } from '../classes';
import { percent } from '../format';
import { ITaskView } from '../model';
import { FINAL_STATES } from '../types';
import { IPanelContext } from './context';

function TaskItem(props: { view: ITaskView; ctx: IPanelContext }): JSX.Element {
  const { view, ctx } = props;
  const { trans, model } = ctx;
  const task = view.task;
  const final = FINAL_STATES.has(task.state);
  const progress = task.progress;
  const pct = progress ? percent(progress.done, progress.total) : null;
  const logRef = React.useRef<HTMLPreElement>(null);
  const [open, setOpen] = React.useState(!final);
  React.useEffect(() => {
    const node = logRef.current;
    if (node) {
      node.scrollTop = node.scrollHeight;
    }
  }, [view.lines.length, open]);
  const name = task.prefix.split('/').filter(Boolean).pop() ?? task.prefix;
  const kindLabel: Record<string, string> = {
    create: trans.__('Create'),
    delete: trans.__('Delete'),
    install: trans.__('Install'),
    update: trans.__('Update'),
    remove: trans.__('Remove'),
    rollback: trans.__('Roll back')
  };
  const stateLabel: Record<string, string> = {
    queued: trans.__('queued'),
    running: trans.__('running'),
    succeeded: trans.__('done'),
    failed: trans.__('failed'),
    cancelled: trans.__('cancelled')
  };
  return (
    <li className={CSS.task} data-state={task.state} data-task-id={task.id}>
      <div className={CSS.taskHead}>
        <span>
          <strong>{kindLabel[task.kind] ?? task.kind}</strong> {name}{' '}
          <span className={CSS.taskState} data-state={task.state}>
            {stateLabel[task.state] ?? task.state}
          </span>
        </span>
        <span>
          <button
            className={CSS.button}
            aria-expanded={open}
            onClick={() => setOpen(!open)}
            title={trans.__('Show or hide the log')}
          >
            {open ? trans.__('Hide log') : trans.__('Log')}
          </button>
          {final ? (
            <button
              className={CSS.button}
              onClick={() => model.dismissTask(task.id)}
              aria-label={trans.__('Dismiss %1 %2', task.kind, name)}
            >
              {trans.__('Dismiss')}
            </button>
          ) : (
            <button
              className={`${CSS.button} ${CSS.danger}`}
              onClick={() =>
                model.cancelTask(task.id).catch(e => ctx.showError(trans.__('Cannot cancel'), e))
              }
            >
              {trans.__('Cancel')}
            </button>
          )}
        </span>
      </div>
      {!final && (
        <div
          className={CSS.progress}
          role="progressbar"
          aria-label={trans.__('Progress of %1', task.kind)}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={pct ?? undefined}
        >
          <div
            className={CSS.progressBar}
            data-indeterminate={pct === null}
            style={{ width: pct === null ? '100%' : `${pct}%` }}
          />
          <span>
            {progress?.phase ?? ''}
            {progress && progress.total ? ` ${progress.done}/${progress.total}` : ''}
          </span>
        </div>
      )}
      {task.state === 'failed' && (
        <div className={CSS.error} role="alert">
          {task.error || view.lost || trans.__('The operation failed; see the log.')}
        </div>
      )}
      {open && (
        <pre className={CSS.log} ref={logRef} tabIndex={0} aria-label={trans.__('Log')}>
          {view.lines.join('\n') || trans.__('(no output yet)')}
        </pre>
      )}
    </li>
  );
}

/** The followed tasks, newest first. */
export function TaskList(props: { ctx: IPanelContext }): JSX.Element | null {
  const tasks = props.ctx.model.tasks;
  if (!tasks.length) {
    return null;
  }
  return (
    <ul className={CSS.tasks} aria-label={props.ctx.trans.__('Operations')}>
      {tasks.map(view => (
        <TaskItem key={view.task.id} view={view} ctx={props.ctx} />
      ))}
    </ul>
  );
}
