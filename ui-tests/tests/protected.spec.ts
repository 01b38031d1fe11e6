/**
 * A protected environment (EnvsApp.protected_prefixes, set by launch_server.py) is shown
 * but cannot be deleted or changed from the panel; the server refuses it too.
 */
import { expect, test } from '@playwright/test';

import { api, openLab, openPanel, server, shot } from './helpers';

test('protected environments cannot be deleted or changed', async ({ page }) => {
  await openLab(page);
  const task = await api(page, 'environments', {
    method: 'POST',
    body: JSON.stringify({ name: 'guarded', specs: ['python'] })
  });
  await expect.poll(async () => (await api(page, `tasks/${task.id}`)).state).toBe('succeeded');

  const panel = await openPanel(page);
  await panel.getByRole('button', { name: 'Refresh' }).click();
  const item = panel.locator('.jp-Envs-item[data-env-name="guarded"]');
  await expect(item.locator('.jp-Envs-badge-protected')).toBeVisible();
  await item.locator('button').first().click();
  await expect(panel.getByRole('button', { name: 'Delete…' })).toBeDisabled();
  await expect(panel.getByRole('button', { name: 'Preview install' })).toHaveCount(0);
  await expect(panel.getByRole('button', { name: /^Remove / })).toHaveCount(0);
  // Export still works on a protected environment.
  await expect(panel.getByRole('button', { name: 'Download' })).toBeEnabled();
  await shot(page, '20-protected');
  const s = server();
  const refused = await page.request.fetch(`${s.url}jupyter-envs/environments/${task.env_id}`, {
    method: 'DELETE',
    headers: { Authorization: `token ${s.token}` }
  });
  expect(refused.status()).toBe(403);
});
