import * as vscode from 'vscode';
import type { Logger } from '../model/logger';
import type { ConflictChoice, FolderSyncer, SyncConflict } from '../sync/folder-syncer';
import { conflictMessage } from '../sync/sync-messages';
import { localSide, openDiff, storedSide } from './diff-editor';

const COMPARE = 'Compare';
const OVERWRITE = 'Overwrite';
const KEEP_STORED = 'Keep Stored';
const LATER = 'Later';

/**
 * A sync conflict's choices: Compare (VS Code's diff of the stored file and the local
 * one, then the choice again), Overwrite (upload the local file unconditionally), Keep
 * Stored (download the stored file over the local one, atomically), Later (it stays in
 * the status bar's list).
 */
export class SyncConflictChoices {
  constructor(private readonly log: Logger) {}

  async offer(syncer: FolderSyncer, conflict: SyncConflict): Promise<ConflictChoice | undefined> {
    for (;;) {
      const storedGone = conflict.kind === 'deletedStored';
      const choices = storedGone ? [OVERWRITE, KEEP_STORED, LATER] : [COMPARE, OVERWRITE, KEEP_STORED, LATER];
      const answer = await vscode.window.showWarningMessage(conflictMessage(conflict), ...choices);
      if (answer === COMPARE) {
        await this.compare(syncer, conflict);
        continue;
      }
      if (answer === OVERWRITE || answer === KEEP_STORED) {
        const choice: ConflictChoice = answer === OVERWRITE ? 'overwrite' : 'keepStored';
        this.log.info(`sync: ${conflict.storedName}: ${answer} chosen`);
        await syncer.resolve(conflict.name, choice);
        return choice;
      }
      this.log.info(`sync: ${conflict.storedName}: left in conflict for later`);
      return undefined;
    }
  }

  private async compare(syncer: FolderSyncer, conflict: SyncConflict): Promise<void> {
    await openDiff(storedSide({ clientId: syncer.mapping.clientId, name: conflict.storedName }), localSide(vscode.Uri.file(conflict.localPath)));
  }
}
