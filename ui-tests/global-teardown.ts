/**
 * Stop the JupyterLab that global-setup.ts started (it removes its temporary directory).
 */
import * as fs from 'fs';

import { PID_FILE } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  if (!fs.existsSync(PID_FILE)) {
    return;
  }
  const pid = Number(fs.readFileSync(PID_FILE, 'utf-8'));
  fs.rmSync(PID_FILE, { force: true });
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise(resolve => setTimeout(resolve, 200));
  }
}
