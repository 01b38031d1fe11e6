/**
 * The main flow of the panel against a real JupyterLab and the local conda channel:
 * create an environment with a kernel, use it from a notebook, export it, delete it.
 */
import { expect, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import { api, openLab, openPanel, server, shot } from './helpers';

const ENV = 'uitest';

test.describe.configure({ mode: 'serial' });

test('create, use, export and delete an environment', async ({ page }) => {
  const s = server();
  const prefix = path.join(s.envs_dir, ENV);
  await openLab(page);
  const panel = await openPanel(page);
  await expect(panel.getByText('Engine: rattler')).toBeVisible();
  await shot(page, '01-panel-empty');

  // Create: validation feedback while typing.
  await panel.getByRole('button', { name: 'New', exact: true }).click();
  const name = panel.getByLabel(/^Name/);
  await name.fill('my env');
  await expect(panel.getByText('The name may not contain spaces.')).toBeVisible();
  await panel.getByLabel(/^Packages/).fill('python --force');
  await expect(panel.getByText("'--force' looks like a command-line option")).toBeVisible();
  await expect(panel.getByRole('button', { name: 'Preview' })).toBeDisabled();
  await shot(page, '02-create-validation');

  // A request the solver cannot satisfy: the server's message is shown, not swallowed.
  await name.fill(ENV);
  await panel.getByLabel(/^Packages/).fill('python libfoo>=99');
  await panel.getByRole('button', { name: 'Preview' }).click();
  await expect(panel.locator('.jp-Envs-error')).toContainText('libfoo');
  await shot(page, '03-create-unsatisfiable');

  // The dry-run plan before it runs ("add a Python kernel" adds ipykernel).
  await panel.getByLabel(/^Packages/).fill('python');
  await expect(panel.getByLabel(/Add a Python kernel/)).toBeChecked();
  await panel.getByRole('button', { name: 'Preview' }).click();
  const plan = panel.locator('.jp-Envs-plan');
  await expect(plan).toContainText('ipykernel');
  await expect(plan).toContainText('python 3.');
  await shot(page, '04-create-plan');
  expect(fs.existsSync(prefix)).toBe(false);

  // Run it and follow its progress and log.
  await panel.getByRole('button', { name: 'Create', exact: true }).click();
  const task = panel.locator('.jp-Envs-task').first();
  await expect(task).toBeVisible();
  await expect(task).toHaveAttribute('data-state', 'succeeded');
  await expect(task.locator('.jp-Envs-log')).not.toBeEmpty();
  const item = panel.locator(`.jp-Envs-item[data-env-name="${ENV}"]`);
  await expect(item).toBeVisible();
  await expect(item.locator('.jp-Envs-badge-kernel')).toBeVisible();
  await expect(item).toContainText('Python 3.');
  expect(fs.existsSync(path.join(prefix, 'conda-meta'))).toBe(true);
  await shot(page, '05-created');

  // The task and its log survive a page reload.
  const logText = await task.locator('.jp-Envs-log').innerText();
  await page.reload();
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 60_000 });
  const panel2 = await openPanel(page);
  const task2 = panel2.locator('.jp-Envs-task').first();
  await expect(task2).toHaveAttribute('data-state', 'succeeded');
  await task2.getByRole('button', { name: 'Log' }).click();
  await expect(task2.locator('.jp-Envs-log')).toHaveText(logText);
  await task2.getByRole('button', { name: 'Dismiss' }).click();
  await expect(panel2.locator('.jp-Envs-task')).toHaveCount(0);

  // Its kernel is in the launcher.
  await page.keyboard.press('Control+Shift+L');
  const card = page.locator('.jp-Launcher:visible .jp-LauncherCard', { hasText: `conda env:${ENV}` }).first();
  await expect(card).toBeVisible();
  await shot(page, '06-launcher');

  // A new notebook in this environment runs there.
  await panel2.locator(`.jp-Envs-item[data-env-name="${ENV}"] button`).first().click();
  await expect(panel2.locator('.jp-Envs-table')).toContainText('ipykernel');
  await shot(page, '07-details');
  await panel2.getByRole('button', { name: 'New notebook' }).click();
  const notebook = page.locator('.jp-NotebookPanel:visible');
  await expect(notebook).toBeVisible();
  // The kernel is up once the status bar shows it idle.
  await expect(page.locator('.jp-StatusBar-Widget', { hasText: `conda env:${ENV}] | Idle` })).toBeVisible({
    timeout: 90_000
  });
  await notebook.locator('.jp-Cell .cm-content').first().click();
  await page.keyboard.type('import sys; print(sys.prefix)');
  await page.keyboard.press('Shift+Enter');
  const output = notebook.locator('.jp-OutputArea-output').first();
  await expect(output).toHaveText(prefix, { timeout: 60_000 });
  await shot(page, '08-notebook');

  // Export and download its environment.yml.
  await openPanel(page);
  await panel2.getByLabel('Export format').selectOption('yml');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    panel2.getByRole('button', { name: 'Download' }).click()
  ]);
  expect(download.suggestedFilename()).toMatch(/\.ya?ml$/);
  const file = await download.path();
  const yml = fs.readFileSync(file!, 'utf-8');
  expect(yml).toContain(`name: ${ENV}`);
  expect(yml).toMatch(/dependencies:[\s\S]*ipykernel/);
  expect(yml).toMatch(/- python[=\s]/);

  // Install through a preview (with name suggestions from the channel), then roll back.
  const install = panel2.getByLabel('Packages to install');
  await install.fill('lib');
  await expect(panel2.locator('#jp-Envs-package-suggestions option[value="libfoo"]')).toHaveCount(1);
  await install.fill('bar');
  await panel2.getByRole('button', { name: 'Preview install' }).click();
  const changePlan = panel2.locator('.jp-Envs-plan');
  await expect(changePlan).toContainText('bar 2.0');
  await expect(changePlan).toContainText('libfoo 1.10');
  await shot(page, '09-install-preview');
  await panel2.getByRole('button', { name: 'Apply' }).click();
  await expect(panel2.locator('.jp-Envs-table tr[data-package="bar"]')).toBeVisible();
  await expect(panel2.locator('.jp-Envs-table tr[data-package="libfoo"]')).not.toHaveClass(
    /jp-Envs-requested/
  );
  await expect(panel2.locator('section[aria-label="History"] li')).toHaveCount(2);
  await panel2.getByRole('button', { name: 'Roll back to this' }).click();
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Roll back' }).click();
  await expect(panel2.locator('.jp-Envs-table tr[data-package="bar"]')).toHaveCount(0);
  await expect(panel2.locator('.jp-Envs-table tr[data-package="ipykernel"]')).toBeVisible();
  expect(fs.existsSync(path.join(prefix, 'conda-meta'))).toBe(true);
  await shot(page, '10-rolled-back');

  // Delete it, after a confirmation.
  await page.getByRole('menuitem', { name: 'Kernel' }).click();
  await page.getByRole('menuitem', { name: /Shut Down All Kernels/ }).click();
  const shutdown = page.locator('.jp-Dialog').getByRole('button', { name: 'Shut Down All' });
  if (await shutdown.isVisible().catch(() => false)) {
    await shutdown.click();
  }
  await panel2.getByRole('button', { name: 'Delete…' }).click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText(`Delete “${ENV}”?`);
  await shot(page, '11-delete-confirm');
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(panel2.locator(`.jp-Envs-item[data-env-name="${ENV}"]`)).toHaveCount(0);
  await expect(panel2.locator('.jp-Envs-task').first()).toHaveAttribute('data-state', 'succeeded');
  expect(fs.existsSync(prefix)).toBe(false);
  const envs = await api(page, 'environments');
  expect(envs.map((e: any) => e.name)).not.toContain(ENV);
  await shot(page, '12-deleted');
});
