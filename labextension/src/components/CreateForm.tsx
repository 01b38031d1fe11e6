/**
 * Create an environment: a name plus packages, or an environment.yml / lock file,
 * previewed (dry run) before it runs.
 */
import * as React from 'react';

import { errorMessage } from '../api';
import { CSS } from '../classes';
import { planSummary } from '../format';
import { ICreateRequest, IPlan } from '../types';
import { checkEnvName, checkSpecs, hasKernelSpec, looksLikeLockfile, parseSpecs } from '../validate';
import { IPanelContext } from './context';
import { PlanView } from './PlanView';

type Source = 'specs' | 'file';

/** The create form. */
export function CreateForm(props: { ctx: IPanelContext }): JSX.Element {
  const { ctx } = props;
  const { model, trans } = ctx;
  const [name, setName] = React.useState('');
  const [source, setSource] = React.useState<Source>('specs');
  const [specsText, setSpecsText] = React.useState('python');
  const [fileText, setFileText] = React.useState('');
  const [kernel, setKernel] = React.useState(true);
  const [channelsText, setChannelsText] = React.useState('');
  const [plan, setPlan] = React.useState<IPlan | null>(null);
  const [serverError, setServerError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const [touched, setTouched] = React.useState(false);

  const specs = parseSpecs(specsText);
  const isLock = looksLikeLockfile(fileText);
  const nameProblem = (() => {
    // An environment.yml may carry the name; a name typed here wins.
    if (!name && source === 'file') {
      return /^name:\s*\S/m.test(fileText) || isLock ? null : trans.__('A name is needed.');
    }
    const problem = checkEnvName(name);
    if (problem) {
      return trans.__(problem);
    }
    return model.envs.some(e => e.name === name)
      ? trans.__('An environment called “%1” exists already.', name)
      : null;
  })();
  const specsProblem =
    source === 'specs'
      ? checkSpecs(specs)
      : fileText.trim()
        ? null
        : trans.__('Paste or upload an environment.yml or a lock file.');
  const valid = !nameProblem && !specsProblem;

  const request = (): ICreateRequest => {
    const req: ICreateRequest = {};
    if (name) {
      req.name = name;
    }
    const channels = channelsText.split(/[\s,]+/).filter(Boolean);
    if (channels.length) {
      req.channels = channels;
    }
    if (source === 'specs') {
      req.specs = kernel && !hasKernelSpec(specs) ? [...specs, 'ipykernel'] : specs;
    } else if (isLock) {
      req.lockfile = fileText;
    } else {
      req.environment_yml = fileText;
    }
    return req;
  };

  // Any edit invalidates the previewed plan.
  const edited = <T,>(set: (v: T) => void) => (v: T) => {
    set(v);
    setPlan(null);
    setServerError(null);
    setTouched(true);
  };

  const preview = async () => {
    setBusy(true);
    setServerError(null);
    try {
      setPlan(await model.previewCreate(request()));
    } catch (error) {
      setServerError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  };

  const create = async () => {
    setBusy(true);
    try {
      await model.create(request());
      model.view = 'list';
    } catch (error) {
      setServerError(errorMessage(error));
    } finally {
      setBusy(false);
    }
  };

  const upload = async (files: FileList | null) => {
    const file = files?.[0];
    if (file) {
      edited(setFileText)(await file.text());
    }
  };

  return (
    <form
      className={CSS.form}
      aria-label={trans.__('New environment')}
      onSubmit={e => {
        e.preventDefault();
        if (valid && !busy) {
          void (plan ? create() : preview());
        }
      }}
    >
      <h3>{trans.__('New environment')}</h3>
      <label className={CSS.field}>
        {trans.__('Name')}
        <input
          name="name"
          value={name}
          autoFocus
          aria-invalid={touched && !!nameProblem}
          aria-describedby="jp-Envs-name-problem"
          className={touched && nameProblem ? CSS.invalid : ''}
          placeholder={trans.__('e.g. analysis')}
          onChange={e => edited(setName)(e.target.value)}
        />
        {touched && nameProblem && (
          <span id="jp-Envs-name-problem" className={CSS.problem} role="alert">
            {nameProblem}
          </span>
        )}
      </label>
      <fieldset className={CSS.field}>
        <legend>{trans.__('Start from')}</legend>
        <label>
          <input
            type="radio"
            name="source"
            checked={source === 'specs'}
            onChange={() => edited(setSource)('specs')}
          />
          {trans.__('A list of packages')}
        </label>
        <label>
          <input
            type="radio"
            name="source"
            checked={source === 'file'}
            onChange={() => edited(setSource)('file')}
          />
          {trans.__('An environment.yml or lock file')}
        </label>
      </fieldset>
      {source === 'specs' ? (
        <>
          <label className={CSS.field}>
            {trans.__('Packages (one per line or separated by spaces, e.g. numpy>=1.26)')}
            <textarea
              name="specs"
              rows={4}
              value={specsText}
              aria-invalid={!!specsProblem}
              className={specsProblem ? CSS.invalid : ''}
              onChange={e => edited(setSpecsText)(e.target.value)}
            />
            {specsProblem && (
              <span className={CSS.problem} role="alert">
                {trans.__(specsProblem)}
              </span>
            )}
          </label>
          <label className={CSS.check}>
            <input
              type="checkbox"
              name="kernel"
              checked={kernel}
              onChange={e => edited(setKernel)(e.target.checked)}
            />
            {trans.__('Add a Python kernel (ipykernel) so notebooks can use it')}
          </label>
        </>
      ) : (
        <>
          <label className={CSS.field}>
            {trans.__('Upload a file')}
            <input
              type="file"
              name="file"
              accept=".yml,.yaml,.lock,.txt"
              onChange={e => void upload(e.target.files)}
            />
          </label>
          <label className={CSS.field}>
            {isLock ? trans.__('Lock file') : trans.__('environment.yml (or paste a lock file)')}
            <textarea
              name="file-text"
              rows={8}
              value={fileText}
              placeholder={'name: analysis\ndependencies:\n  - python\n  - ipykernel'}
              onChange={e => edited(setFileText)(e.target.value)}
            />
            {specsProblem && touched && (
              <span className={CSS.problem} role="alert">
                {specsProblem}
              </span>
            )}
          </label>
        </>
      )}
      <label className={CSS.field}>
        {trans.__('Channels (optional; names or URLs, highest priority first)')}
        <input
          name="channels"
          value={channelsText}
          placeholder={(model.config?.channels ?? []).join(' ') || 'conda-forge'}
          onChange={e => edited(setChannelsText)(e.target.value)}
        />
      </label>
      {serverError && (
        <div className={CSS.error} role="alert">
          {serverError}
        </div>
      )}
      {plan && (
        <>
          <p className={CSS.hint}>
            {trans.__('Plan: %1. Create it?', planSummary(plan))}
          </p>
          <PlanView plan={plan} trans={trans} />
        </>
      )}
      <div className={CSS.toolbar}>
        <button type="button" className={CSS.button} onClick={() => (model.view = 'list')}>
          {trans.__('Back')}
        </button>
        {plan ? (
          <button type="submit" className={`${CSS.button} ${CSS.primary}`} disabled={busy || !valid}>
            {trans.__('Create')}
          </button>
        ) : (
          <button type="submit" className={`${CSS.button} ${CSS.primary}`} disabled={busy || !valid}>
            {busy ? trans.__('Solving…') : trans.__('Preview')}
          </button>
        )}
      </div>
    </form>
  );
}
