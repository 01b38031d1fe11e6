/**
 * GPUs: the inventory with memory and utilization, the GPU choice of an environment and
 * of the current notebook. This machine has no GPU: launch_server.py substitutes the
 * inventory through JUPYTER_ENVS_GPU_INVENTORY (the one stand-in these tests use).
 */
import { expect, test } from '@playwright/test';

import { api, openLab, openPanel, shot } from './helpers';

const ENV = 'gpuenv';

test('GPU view and GPU choices, in the dark theme too', async ({ page }) => {
  await openLab(page);
  const panel = await openPanel(page);

  await panel.getByRole('button', { name: 'GPUs', exact: true }).click();
  const gpus = panel.locator('.jp-Envs-gpu');
  await expect(gpus).toHaveCount(2);
  await expect(gpus.first()).toContainText('Fake A100');
  await expect(gpus.first().getByRole('meter', { name: 'Utilization' })).toHaveAttribute(
    'aria-valuenow',
    '65'
  );
  await expect(panel.getByText('Driver 550.54.15, CUDA 12.4')).toBeVisible();
  await expect(panel.getByText('Open a notebook to choose its GPUs.')).toBeVisible();
  await shot(page, '16-gpus');

  // An environment with a CUDA build: GPU marker in the list, default GPU choice.
  await panel.getByRole('button', { name: /All environments/ }).click();
  await panel.getByRole('button', { name: 'New', exact: true }).click();
  await panel.getByLabel(/^Name/).fill(ENV);
  await panel.getByLabel(/^Packages/).fill('python torchlet=*=cuda*');
  await panel.getByRole('button', { name: 'Preview' }).click();
  await expect(panel.locator('.jp-Envs-plan')).toContainText('cuda12_1');
  await panel.getByRole('button', { name: 'Create', exact: true }).click();
  await expect(panel.locator('.jp-Envs-task').first()).toHaveAttribute('data-state', 'succeeded');
  const item = panel.locator(`.jp-Envs-item[data-env-name="${ENV}"]`);
  await expect(item.locator('.jp-Envs-badge-gpu')).toBeVisible();
  await item.locator('button').first().click();
  const choice = panel.getByLabel('GPU choice');
  await choice.selectOption('auto:1');
  const envs = await api(page, 'environments');
  const id = envs.find((e: any) => e.name === ENV).id;
  await expect.poll(async () => (await api(page, `environments/${id}/gpu`)).choice).toEqual({
    mode: 'auto',
    count: 1
  });
  await shot(page, '17-env-gpu-choice');

  // The current notebook's choice goes into its metadata.
  await panel.getByRole('button', { name: 'New notebook' }).click();
  await expect(page.locator('.jp-NotebookPanel:visible')).toBeVisible();
  await openPanel(page);
  await panel.getByRole('button', { name: 'GPUs', exact: true }).click();
  const nbChoice = panel.getByLabel(/GPUs for this notebook/);
  await nbChoice.selectOption('devices:GPU-11111111-bbbb-4000-8000-000000000001');
  const path = (await panel.locator('section[aria-label="Current notebook"] .jp-Envs-prefix').innerText()).trim();
  await expect
    .poll(async () => (await api(page, `../api/contents/${path}`)).content.metadata.jupyter_envs)
    .toEqual({ gpu: { mode: 'devices', devices: ['GPU-11111111-bbbb-4000-8000-000000000001'] } });

  // Dark theme: the panel uses theme variables only.
  await page.getByRole('menuitem', { name: 'Settings' }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Theme$/ }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: 'JupyterLab Dark' }).first().click();
  await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'false');
  await shot(page, '18-gpus-dark');
  await panel.getByRole('button', { name: /All environments/ }).click();
  await shot(page, '19-list-dark');
  await page.getByRole('menuitem', { name: 'Settings' }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Theme$/ }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: 'JupyterLab Light' }).first().click();
  await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'true');
});
