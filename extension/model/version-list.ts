import type { VersionInfo } from '../../server/protocol/records';
import { counted, formatAge, formatBytes } from './format';

/** One row of Show Versions. */
export interface VersionItem {
  generation: number;
  current: boolean;
  label: string;
  description: string;
  detail: string;
  version: VersionInfo;
}

export interface VersionList {
  items: VersionItem[];
  /** A line above the list: how many versions are kept, and what the current one is. */
  title: string;
  /** The file is gone (deleted, or all its versions dropped): nothing to show or restore. */
  deleted: boolean;
}

/** What Show Versions offers to do with one version; the current one cannot be restored (it is current). */
export type VersionAction = 'open' | 'compareWithCurrent' | 'compareWithLocal' | 'restore';

/** Digits of a SHA-256 shown in lists: enough to tell versions apart at a glance, the whole in the detail. */
export const SHORT_CHECKSUM = 12;

/**
 * The versions of `name` newest first, whatever order they came in. A list without a
 * current version (the name was deleted and only older versions are left, as a replica
 * may still report) says so, and no version in it is called current.
 */
export function buildVersionList(label: string, versions: readonly VersionInfo[], nowMs: number): VersionList {
  if (versions.length === 0) {
    return { items: [], title: `${label}: no versions are kept (deleted, or never stored)`, deleted: true };
  }
  const sorted = [...versions].sort((a, b) => b.generation - a.generation);
  const current = sorted.find((version) => version.current);
  const items = sorted.map((version): VersionItem => {
    const when = new Date(version.mtimeMs);
    return {
      generation: version.generation,
      current: version.current,
      label: `${version.current ? '$(circle-filled) ' : ''}Generation ${version.generation}${version.current ? ' (current)' : ''}`,
      description: `${formatBytes(version.size)} · ${formatAge(version.mtimeMs, nowMs)} · ${version.sha256.slice(0, SHORT_CHECKSUM)}`,
      detail: `Stored ${when.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} · ${version.size.toLocaleString('en-US')} bytes · SHA-256 ${version.sha256}`,
      version,
    };
  });
  const older = sorted.length - (current ? 1 : 0);
  const title = current
    ? `${label}: generation ${current.generation} is current; ${counted(older, 'older version')} kept`
    : `${label} is deleted; ${counted(older, 'older version')} still listed`;
  return { items, title, deleted: !current };
}

/** The actions for one version, in the order offered. */
export function versionActions(item: VersionItem): { action: VersionAction; label: string; description?: string }[] {
  const actions: { action: VersionAction; label: string; description?: string }[] = [
    { action: 'open', label: '$(go-to-file) Open', description: 'read-only' },
  ];
  if (!item.current) {
    actions.push({ action: 'compareWithCurrent', label: '$(diff) Compare with Current', description: 'this version on the left, the current one on the right' });
  }
  actions.push({ action: 'compareWithLocal', label: '$(diff) Compare with Local File...', description: 'pick a file on this machine' });
  if (!item.current) {
    actions.push({ action: 'restore', label: '$(history) Restore', description: `makes generation ${item.generation}'s bytes current again, as a new version` });
  }
  return actions;
}
