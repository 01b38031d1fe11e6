/**
 * A long operation: its progress and live log, surviving a page reload, and cancel.
 * The packages come from a local HTTP channel whose downloads are slow (launch_server.py).
 */
import { expect, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import { api, openLab, openPanel, server, shot } from './helpers';

const ENV = 'slowenv';

test('follow a long create across a reload, then cancel it', async ({ page }) => {
  const s = server() as ReturnType<typeof server> & { slow_channel: string; slow_names: string[] };
  const prefix = path.join(s.envs_dir, ENV);
  await openLab(page);
  const panel = await openPanel(page);

  await panel.getByRole('button', { name: 'New', exact: true }).click();
  await panel.getByLabel(/^Name/).fill(ENV);
  await panel.getByLabel(/^Packages/).fill(s.slow_names.join(' '));
  await panel.getByLabel(/Add a Python kernel/).uncheck();
  await panel.getByLabel(/^Channels/).fill(s.slow_channel);
  await panel.getByRole('button', { name: 'Preview' }).click();
  await expect(panel.locator('.jp-Envs-plan')).toContainText(s.slow_names[0]);
  await panel.getByRole('button', { name: 'Create', exact: true }).click();

  const task = panel.locator('.jp-Envs-task').first();
  await expect(task).toHaveAttribute('data-state', 'running');
  await expect(task.getByRole('progressbar')).toBeVisible();
  await expect(task.locator('.jp-Envs-log')).toContainText('solving');
  const tid = await task.getAttribute('data-task-id');
  await shot(page, '13-long-operation-running');

  // Reload: the panel re-attaches to the running task and keeps its log.
  const before = await task.locator('.jp-Envs-log').innerText();
  await page.reload();
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 60_000 });
  const panel2 = await openPanel(page);
  const again = panel2.locator(`.jp-Envs-task[data-task-id="${tid}"]`);
  await expect(again).toHaveAttribute('data-state', 'running');
  await expect(again.getByRole('progressbar')).toBeVisible();
  expect(await again.locator('.jp-Envs-log').innerText()).toContain(before.split('\n')[0]);
  await shot(page, '14-long-operation-after-reload');

  // Cancel: the task ends cancelled and nothing is left on disk.
  await again.getByRole('button', { name: 'Cancel' }).click();
  await expect(again).toHaveAttribute('data-state', 'cancelled', { timeout: 60_000 });
  await expect(again.getByRole('progressbar')).toHaveCount(0);
  await shot(page, '15-long-operation-cancelled');
  const state = await api(page, `tasks/${tid}`);
  expect(state.state).toBe('cancelled');
  expect(fs.existsSync(prefix)).toBe(false);
  await again.getByRole('button', { name: 'Dismiss' }).click();
});
