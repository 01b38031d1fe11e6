/**
 * Starts a real, isolated JupyterLab with jupyter-envs and the local conda channel
 * (ui-tests/launch_server.py) for the model tests, and stops it afterwards.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

let child: ChildProcess | null = null;

export async function setup({ provide }: { provide: (key: string, value: unknown) => void }): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jupyter-envs-vitest-'));
  const info = path.join(dir, 'server.json');
  const script = path.resolve(__dirname, '..', '..', '..', 'ui-tests', 'launch_server.py');
  child = spawn(process.env.PYTHON ?? 'python', [script, info], { stdio: ['ignore', 'inherit', 'inherit'] });
  const deadline = Date.now() + 150_000;
  while (!fs.existsSync(info)) {
    if (child.exitCode !== null) {
      throw new Error(`launch_server.py exited with ${child.exitCode}`);
    }
    if (Date.now() > deadline) {
      throw new Error('the jupyter-envs test server did not start in 150 s');
    }
    await new Promise(resolve => setTimeout(resolve, 250));
  }
  provide('server', JSON.parse(fs.readFileSync(info, 'utf-8')));
}

export async function teardown(): Promise<void> {
  if (child && child.exitCode === null) {
    const exited = new Promise(resolve => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 30_000))]);
  }
}
