/**
 * Shared helpers: the server started by global-setup.ts, the panel, screenshots.
 */
import { expect, Locator, Page } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import { INFO_FILE } from '../global-setup';

/** What launch_server.py reports. */
export interface IServer {
  url: string;
  base_url: string;
  token: string;
  root: string;
  envs_dir: string;
  notebooks: string;
  server_log: string;
}

/** The running test server. */
export function server(): IServer {
  return JSON.parse(fs.readFileSync(INFO_FILE, 'utf-8')) as IServer;
}

/** Screenshots of the main states go here (git-ignored). */
export const SCREENSHOTS = path.join(__dirname, '..', 'screenshots');

/** Save a screenshot of the whole page as `screenshots/<name>.png`. */
export async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** Open JupyterLab (logging in with the token) and wait until it has started. */
export async function openLab(page: Page): Promise<void> {
  const s = server();
  await page.goto(`${s.url}lab?token=${s.token}&reset`);
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 60_000 });
  await expect(page.locator('.jp-LauncherCard').first()).toBeVisible({ timeout: 60_000 });
}

/** Open the environments sidebar and return it. */
export async function openPanel(page: Page): Promise<Locator> {
  const panel = page.locator('#jp-Envs-panel');
  if (!(await panel.isVisible())) {
    await page.locator('.jp-SideBar [data-id="jp-Envs-panel"]').click();
  }
  await expect(panel).toBeVisible();
  return panel;
}

/** Call the REST API directly (to set up or check state the UI does not show). */
export async function api(page: Page, endPoint: string, init: RequestInit = {}): Promise<any> {
  const s = server();
  const response = await page.request.fetch(`${s.url}jupyter-envs/${endPoint}`, {
    method: init.method ?? 'GET',
    headers: { Authorization: `token ${s.token}`, 'Content-Type': 'application/json' },
    data: init.body as string | undefined
  });
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}
