import { describe, expect, it } from 'vitest';

import { filterEnvs, formatBytes, percent, planSummary, sortEnvs } from '../format';
import { dispositionFilename, hasCudaBuilds } from '../model';
import { appendChunk, TaskStore } from '../tasks';
import { IEnvDetails, IEnvInfo } from '../types';
import { checkEnvName, checkSpec, checkSpecs, hasKernelSpec, looksLikeLockfile, parseSpecs } from '../validate';

function env(name: string, extra: Partial<IEnvInfo> = {}): IEnvInfo {
  return {
    id: name,
    name,
    prefix: `/opt/conda/envs/${name}`,
    is_root: false,
    protected: false,
    python_version: '3.11.7',
    package_count: 3,
    has_kernel: true,
    last_modified: 0,
    ...extra
  };
}

describe('validate', () => {
  it.each([
    ['', 'A name is needed.'],
    ['my env', 'spaces'],
    ['a/b', "'/'"],
    ['-x', "may not start with '-'"],
    ['.hidden', "may not start with '-'"],
    ['base', 'reserved'],
    ['Root', 'reserved'],
    ['x'.repeat(129), 'longer than 128']
  ])('refuses the name %j', (name, fragment) => {
    expect(checkEnvName(name)).toContain(fragment);
  });

  it.each(['analysis', 'py3.11_gpu', 'A-b'])('accepts the name %j', name => {
    expect(checkEnvName(name)).toBeNull();
  });

  it('splits specs on lines and blanks, keeping operators with their package', () => {
    expect(parseSpecs('python=3.11  numpy >=1.26\n# comment\n\nconda-forge::pandas')).toEqual([
      'python=3.11',
      'numpy>=1.26',
      'conda-forge::pandas'
    ]);
  });

  it.each([
    ['--force', 'command-line option'],
    ['numpy;rm', 'characters'],
    ['$(x)', 'characters'],
    ['>=1.0', 'package name']
  ])('refuses the spec %j', (spec, fragment) => {
    expect(checkSpec(spec)).toContain(fragment);
  });

  it.each(['numpy', 'numpy>=1.26,<2', 'conda-forge::numpy=1.26=py311*', 'libfoo 1.10.*'])(
    'accepts the spec %j',
    spec => {
      expect(checkSpec(spec)).toBeNull();
    }
  );

  it('needs at least one spec and reports the first problem', () => {
    expect(checkSpecs([])).toContain('at least one');
    expect(checkSpecs([], true)).toBeNull();
    expect(checkSpecs(['python', '-x', '--y'])).toContain("'-x'");
  });

  it('knows whether a kernel is asked for', () => {
    expect(hasKernelSpec(['python', 'ipykernel>=6'])).toBe(true);
    expect(hasKernelSpec(['conda-forge::ipykernel'])).toBe(true);
    expect(hasKernelSpec(['python', 'ipykernel-extra'])).toBe(false);
  });

  it('tells a lock file from an environment.yml', () => {
    expect(looksLikeLockfile('version: 6\nenvironments:\n  default: {}\npackages: []\n')).toBe(true);
    expect(looksLikeLockfile('name: x\ndependencies:\n  - python\n')).toBe(false);
  });
});

describe('format', () => {
  it('formats sizes', () => {
    expect(formatBytes(null)).toBe('');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(20 * 1024 ** 3)).toBe('20 GB');
  });

  it('filters on every word, over name, prefix and Python version', () => {
    const envs = [env('torch'), env('web', { python_version: '3.12.1' }), env('r', { python_version: null })];
    expect(filterEnvs(envs, '').length).toBe(3);
    expect(filterEnvs(envs, 'TOR').map(e => e.name)).toEqual(['torch']);
    expect(filterEnvs(envs, '3.12 web').map(e => e.name)).toEqual(['web']);
    expect(filterEnvs(envs, 'envs/r')).toHaveLength(1);
    expect(filterEnvs(envs, 'nothing')).toHaveLength(0);
  });

  it('sorts root first, then by name', () => {
    const sorted = sortEnvs([env('b'), env('base', { is_root: true }), env('a')]);
    expect(sorted.map(e => e.name)).toEqual(['base', 'a', 'b']);
  });

  it('summarizes plans and progress', () => {
    const p = { name: 'x', version: '1', build: '0' };
    expect(planSummary({ install: [p, p], remove: [p], change: [] })).toBe('2 to install, 1 to remove');
    expect(planSummary({ install: [], remove: [], change: [] })).toBe('nothing to change');
    expect(percent(1, 4)).toBe(25);
    expect(percent(3, null)).toBeNull();
    expect(percent(9, 4)).toBe(100);
  });
});

describe('task logs', () => {
  it('appends new lines and ignores lines already seen', () => {
    let state = appendChunk([], 0, { offset: 0, lines: ['a', 'b'], next: 2 });
    expect(state).toEqual({ lines: ['a', 'b'], offset: 2 });
    // A reconnect that resends from offset 1 adds only what is new.
    state = appendChunk(state.lines, state.offset, { offset: 1, lines: ['b', 'c'], next: 3 });
    expect(state).toEqual({ lines: ['a', 'b', 'c'], offset: 3 });
    // Nothing new.
    expect(appendChunk(state.lines, 3, { offset: 0, lines: ['a'], next: 1 }).offset).toBe(3);
  });

  it('says when the server dropped lines', () => {
    const state = appendChunk(['a'], 1, { offset: 5, lines: ['f'], next: 6 });
    expect(state.lines[1]).toContain('4 earlier lines');
    expect(state.offset).toBe(6);
  });

  it('keeps a bounded number of lines', () => {
    const lines = Array.from({ length: 10 }, (_, i) => `l${i}`);
    const state = appendChunk([], 0, { offset: 0, lines, next: 10 }, 4);
    expect(state.lines).toEqual(['l6', 'l7', 'l8', 'l9']);
  });

  it('remembers tasks per server in localStorage', () => {
    localStorage.clear();
    const a = new TaskStore(localStorage, '/a/');
    const b = new TaskStore(localStorage, '/b/');
    a.save([{ id: 't1', kind: 'create', prefix: '/p', offset: 3, lines: ['x'], state: 'running' }]);
    expect(a.load().map(t => t.id)).toEqual(['t1']);
    expect(b.load()).toEqual([]);
    a.save([]);
    expect(localStorage.getItem(a.key)).toBeNull();
    localStorage.setItem(a.key, '{not json');
    expect(a.load()).toEqual([]);
    expect(new TaskStore(null, '/').load()).toEqual([]);
  });
});

describe('model helpers', () => {
  it('reads the download filename', () => {
    expect(dispositionFilename('attachment; filename="env.yml"')).toBe('env.yml');
    expect(dispositionFilename(null)).toBeNull();
  });

  it('spots CUDA builds', () => {
    const details = (builds: [string, string][]): IEnvDetails => ({
      ...env('x'),
      packages: builds.map(([name, build]) => ({ name, version: '1', build })),
      pip_packages: [],
      requested_specs: [],
      kernelspecs: [],
      revision_count: 0
    });
    expect(hasCudaBuilds(details([['torchlet', 'cuda12_1']]))).toBe(true);
    expect(hasCudaBuilds(details([['cuda-version', '0']]))).toBe(true);
    expect(hasCudaBuilds(details([['torchlet', 'cpu_0'], ['python', 'h0_0_cpython']]))).toBe(false);
  });
});
