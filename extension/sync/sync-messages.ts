import { formatBytes } from '../../server/protocol';
import type { SyncConflict, SyncStatus } from './folder-syncer';
import type { PlanSummary } from './sync-plan';

export function countOf(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/** The question before a first sync: what goes which way, in counts and IEC sizes. */
export function firstSyncQuestion(summary: PlanSummary, folder: string, stored: string): { message: string; detail: string } {
  const parts: string[] = [];
  if (summary.uploads > 0) {
    parts.push(`upload ${countOf(summary.uploads, 'file')} (${formatBytes(summary.uploadBytes)})`);
  }
  if (summary.downloads > 0) {
    parts.push(`download ${countOf(summary.downloads, 'file')} (${formatBytes(summary.downloadBytes)}) into ${folder}`);
  }
  if (summary.deletesStored > 0) {
    parts.push(`delete ${countOf(summary.deletesStored, 'stored file')}`);
  }
  if (summary.deletesLocal > 0) {
    parts.push(`delete ${countOf(summary.deletesLocal, 'local file')}`);
  }
  const detail = [
    'Files already the same on both sides are left as they are.',
    summary.conflicts > 0 ? `${countOf(summary.conflicts, 'file differs', 'files differ')} on both sides: nothing is overwritten, you choose for each from the DFS sync item in the status bar.` : '',
    'Afterwards each file you save in the folder is uploaded, unless it changed in DFS meanwhile.',
  ]
    .filter(Boolean)
    .join(' ');
  return { message: `Sync ${folder} with ${stored}: ${parts.join(', ')}?`, detail };
}

/** The status bar item of every synced folder together. */
export function syncStatusView(status: SyncStatus, folders: number): { text: string; tooltip: string; warning: boolean } {
  const where = countOf(folders, 'synced folder');
  if (status.conflicts > 0) {
    return {
      text: `$(warning) DFS sync: ${countOf(status.conflicts, 'conflict')}`,
      tooltip: `${where}: ${countOf(status.conflicts, 'file')} changed both here and in DFS; nothing was overwritten. Click to choose for each.`,
      warning: true,
    };
  }
  if (status.pending > 0) {
    return { text: `$(sync~spin) DFS sync: ${status.pending} pending`, tooltip: `${where}: ${countOf(status.pending, 'file')} waiting to be sent or being sent`, warning: false };
  }
  return { text: `$(check) DFS sync: ${status.synced} synced`, tooltip: `${where}: ${countOf(status.synced, 'file')} in step with DFS. Click for the synced folders.`, warning: false };
}

/** What a conflict notification says. */
export function conflictMessage(conflict: SyncConflict): string {
  return conflict.kind === 'bothChanged'
    ? `DFS sync: ${conflict.storedName} changed in DFS since it was last synced, and it changed here too. Nothing was overwritten.`
    : `DFS sync: ${conflict.storedName} was deleted from DFS, and it changed here. Nothing was overwritten.`;
}
