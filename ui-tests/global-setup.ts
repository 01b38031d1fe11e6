/**
 * Start the isolated JupyterLab (launch_server.py) and wait for its info file.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const INFO_FILE = path.join(__dirname, 'test-results', 'server.json');
export const PID_FILE = path.join(__dirname, 'test-results', 'server.pid');

export default async function globalSetup(): Promise<void> {
  fs.mkdirSync(path.dirname(INFO_FILE), { recursive: true });
  fs.rmSync(INFO_FILE, { force: true });
  const python = process.env.PYTHON ?? 'python';
  const child = spawn(python, [path.join(__dirname, 'launch_server.py'), INFO_FILE], {
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: false
  });
  fs.writeFileSync(PID_FILE, String(child.pid));
  const deadline = Date.now() + 150_000;
  while (!fs.existsSync(INFO_FILE)) {
    if (child.exitCode !== null) {
      throw new Error(`launch_server.py exited with ${child.exitCode}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error('JupyterLab did not start in 150 s');
    }
    await new Promise(resolve => setTimeout(resolve, 250));
  }
  child.unref();
}
