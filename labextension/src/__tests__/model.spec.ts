/**
 * EnvsModel against a real jupyter-envs server (started by server-setup.ts) and the
 * local conda channel: nothing here is mocked.
 */
import { ServerConnection } from '@jupyterlab/services';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { EnvsModel } from '../model';

interface IServer {
  url: string;
  token: string;
  envs_dir: string;
}

const server = inject('server' as never) as IServer;

function settings(): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: server.url,
    wsUrl: server.url.replace(/^http/, 'ws'),
    token: server.token,
    appendToken: true
  });
}

async function until(check: () => boolean, what: string, timeout = 30_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise(resolve => setTimeout(resolve, 50));
  }
}

function newModel(): EnvsModel {
  // Node has no WebSocket here: the model follows logs by polling `tasks/{tid}/log`.
  return new EnvsModel({ settings: settings(), storage: localStorage, useWebSocket: false });
}

describe('EnvsModel with a real server', () => {
  let model: EnvsModel;
  let changes = 0;

  beforeAll(async () => {
    localStorage.clear();
    model = newModel();
    model.stateChanged.connect(() => changes++);
    await model.initialize();
  });

  afterAll(() => model.dispose());

  it('loads the configuration and the (empty) list', () => {
    expect(model.config?.backend).toBe('rattler');
    expect(model.config?.read_only).toBe(false);
    expect(model.envs).toEqual([]);
    expect(model.error).toBeNull();
    expect(changes).toBeGreaterThan(0);
  });

  it('passes the server message of a refused request on', async () => {
    await expect(model.previewCreate({ name: 'bad name', specs: ['python'] })).rejects.toThrow(
      /bad name/
    );
    await expect(model.previewCreate({ name: 'm1', specs: ['libfoo>=99'] })).rejects.toThrow(
      /libfoo/
    );
    expect(fs.existsSync(path.join(server.envs_dir, 'm1'))).toBe(false);
  });

  it('previews, creates and follows the task to the end', async () => {
    const plan = await model.previewCreate({ name: 'm1', specs: ['python', 'ipykernel', 'bar'] });
    expect(plan.install.map(p => p.name).sort()).toEqual(['bar', 'ipykernel', 'libfoo', 'python']);
    expect(plan.install.find(p => p.name === 'libfoo')?.version).toBe('1.10');

    const done: string[] = [];
    model.onTaskDone(task => done.push(task.state));
    const view = await model.create({ name: 'm1', specs: ['python', 'ipykernel', 'bar'] });
    expect(model.tasks[0].task.id).toBe(view.task.id);
    await until(() => done.length === 1, 'the create to finish');
    expect(done).toEqual(['succeeded']);
    const finished = model.tasks[0];
    expect(finished.lines.length).toBeGreaterThan(0);
    expect(finished.offset).toBe(finished.lines.length);
    const env = model.envs.find(e => e.name === 'm1');
    expect(env?.has_kernel).toBe(true);
    expect(env?.package_count).toBe(4);
    expect(fs.existsSync(path.join(server.envs_dir, 'm1', 'conda-meta'))).toBe(true);
    await until(() => model.size(env!.id) !== null, 'the size of m1');
    expect(model.gpuCapable(env!.id)).toBe(false);
  });

  it('shows details and changes packages through a preview', async () => {
    const env = model.envs.find(e => e.name === 'm1')!;
    await model.select(env.id);
    expect(model.view).toBe('details');
    expect(model.details?.packages.map(p => p.name)).toContain('bar');
    expect(model.revisions?.length).toBe(1);

    const plan = await model.previewChange(env.id, 'install', ['oldfoo-user']);
    expect(plan.change.map(c => [c.name, c.old.version, c.new.version])).toContainEqual([
      'libfoo',
      '1.10',
      '1.9'
    ]);
    let finished = false;
    model.onTaskDone(() => (finished = true));
    await model.change(env.id, 'install', ['oldfoo-user']);
    await until(() => finished, 'the install to finish');
    await until(
      () => model.details?.packages.some(p => p.name === 'oldfoo-user') ?? false,
      'the details to show oldfoo-user'
    );
    expect(model.details?.packages.find(p => p.name === 'libfoo')?.version).toBe('1.9');
    expect(model.revisions?.length).toBe(2);
  });

  it('exports with the server-given filename', async () => {
    const env = model.envs.find(e => e.name === 'm1')!;
    const yml = await model.exportEnv(env.id, 'yml');
    expect(yml.text).toContain('name: m1');
    expect(yml.text).toContain('oldfoo-user');
    expect(yml.filename).toMatch(/\.ya?ml$/);
    const history = await model.exportEnv(env.id, 'from-history');
    expect(history.text).not.toContain('libfoo');
  });

  it('re-attaches to remembered tasks after a reload', async () => {
    const again = newModel();
    try {
      await again.restoreTasks();
      const before = model.tasks.map(t => [t.task.id, t.lines.join('\n')]);
      expect(again.tasks.map(t => [t.task.id, t.lines.join('\n')])).toEqual(before);
    } finally {
      again.dispose();
    }
  });

  it('deletes', async () => {
    const env = model.envs.find(e => e.name === 'm1')!;
    let finished = false;
    model.onTaskDone(() => (finished = true));
    await model.remove(env.id);
    await until(() => finished, 'the delete to finish');
    expect(model.envs.find(e => e.name === 'm1')).toBeUndefined();
    expect(model.view).toBe('list');
    expect(fs.existsSync(path.join(server.envs_dir, 'm1'))).toBe(false);
  });
});
