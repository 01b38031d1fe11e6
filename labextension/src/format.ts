/**
 * Small formatting and filtering helpers the components share.
 */
import { IEnvInfo, IPlan } from './types';

/** Bytes as a short human-readable size ("1.2 GB"). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** The environments whose name, prefix or Python version contains every word of the query. */
export function filterEnvs(envs: IEnvInfo[], query: string): IEnvInfo[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) {
    return envs;
  }
  return envs.filter(env => {
    const hay = `${env.name} ${env.prefix} ${env.python_version ?? ''}`.toLowerCase();
    return words.every(w => hay.includes(w));
  });
}

/** Environments sorted: root first, then by name. */
export function sortEnvs(envs: IEnvInfo[]): IEnvInfo[] {
  return [...envs].sort((a, b) =>
    a.is_root !== b.is_root ? (a.is_root ? -1 : 1) : a.name.localeCompare(b.name)
  );
}

/** Whether a plan changes nothing. */
export function planIsEmpty(plan: IPlan): boolean {
  return !plan.install.length && !plan.remove.length && !plan.change.length;
}

/** "3 to install, 1 to remove, 2 to change" (empty parts left out). */
export function planSummary(plan: IPlan): string {
  const parts: string[] = [];
  if (plan.install.length) {
    parts.push(`${plan.install.length} to install`);
  }
  if (plan.change.length) {
    parts.push(`${plan.change.length} to change`);
  }
  if (plan.remove.length) {
    parts.push(`${plan.remove.length} to remove`);
  }
  return parts.length ? parts.join(', ') : 'nothing to change';
}

/** A percentage 0..100 for a progress, or null when the total is unknown. */
export function percent(done: number, total: number | null | undefined): number | null {
  if (!total || total <= 0) {
    return null;
  }
  return Math.max(0, Math.min(100, Math.round((100 * done) / total)));
}
