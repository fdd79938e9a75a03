import { DfsError, Precondition, preconditionFailed, preconditionHolds } from '../protocol';
import type { DiskStore } from '../storage/disk-store';
import { fileKey } from '../storage/key-lock';
import { liveOf } from '../storage/name-state';

interface PendingWrite {
  clientId: string;
  name: string;
  /** Bytes the write adds to the client's usage (0 for a delete). */
  bytes: number;
  /** Once the catalog holds this generation, its bytes are in the usage already. */
  generation?: number;
}

export interface WriteIntent {
  clientId: string;
  name: string;
  /** Bytes of the new version; undefined for a delete. */
  size?: number;
  precondition?: Precondition;
  /** The generation the write was given, once it has one. */
  generation?: number;
}

/**
 * The checks a write must pass at its decision, made together with registering it
 * and with no await in between, so two writes decided at once cannot both pass a
 * check only one of them may pass: the precondition, the quota (older versions
 * count), and a file where another name needs a folder (or the reverse).
 */
export class WriteGate {
  private readonly pending = new Map<string, PendingWrite>();

  constructor(
    private readonly store: DiskStore,
    private readonly quotaBytes: number | undefined,
    private readonly keepVersions: number,
  ) {}

  /** Checks, and holds the name until `release` is called. Throws CONFLICT or LIMIT. */
  admit(intent: WriteIntent): () => void {
    const { clientId, name } = intent;
    this.check(intent, false);
    const key = fileKey(clientId, name);
    const entry: PendingWrite = { clientId, name, bytes: intent.size ?? 0, generation: intent.generation };
    this.pending.set(key, entry);
    return () => {
      if (this.pending.get(key) === entry) {
        this.pending.delete(key);
      }
    };
  }

  /**
   * The same checks without holding anything, to refuse before any byte is sent. A
   * write of the same name still deciding is no reason to refuse yet: by the time this
   * one decides, that one is settled and the checks run again.
   */
  check(intent: WriteIntent, early = true): void {
    const { clientId, name, size, precondition } = intent;
    if (!early && this.pending.has(fileKey(clientId, name))) {
      throw new DfsError('CONFLICT', `${name} is being changed by another request right now; try again`);
    }
    if (precondition) {
      const current = liveOf(this.store.state(clientId, name))?.generation;
      if (!preconditionHolds(precondition, current)) {
        throw preconditionFailed(name, precondition, current);
      }
    }
    if (size === undefined) {
      return;
    }
    this.store.assertCanStore(clientId, name);
    for (const other of this.pending.values()) {
      if (other.clientId === clientId && (other.name.startsWith(name + '/') || name.startsWith(other.name + '/'))) {
        throw new DfsError('CONFLICT', `cannot store ${name} while ${other.name} is being changed: a name cannot be a file and a folder at once; try again once that change is done`);
      }
    }
    if (this.quotaBytes !== undefined) {
      const used = this.store.usage(clientId) + this.pendingBytes(clientId);
      const freed = this.bytesFreedBy(clientId, name);
      if (used - freed + size > this.quotaBytes) {
        throw new DfsError(
          'LIMIT',
          `client ${clientId} would use ${used - freed + size} bytes (older versions included), over its quota of ${this.quotaBytes}; delete files first${this.keepVersions > 0 ? ' (deleting a file frees its older versions too)' : ''}`,
        );
      }
    }
  }

  /** Bytes of admitted writes the catalog does not count yet (recorded ones it does). */
  private pendingBytes(clientId: string): number {
    let bytes = 0;
    for (const write of this.pending.values()) {
      if (write.clientId !== clientId) {
        continue;
      }
      const recorded = write.generation !== undefined && this.store.state(clientId, write.name)?.versions.some((version) => version.generation === write.generation);
      if (!recorded) {
        bytes += write.bytes;
      }
    }
    return bytes;
  }

  /** The oldest version a new one pushes out of the kept history. */
  private bytesFreedBy(clientId: string, name: string): number {
    const versions = this.store.state(clientId, name)?.versions ?? [];
    return versions.length > this.keepVersions ? versions.slice(this.keepVersions).reduce((sum, version) => sum + version.size, 0) : 0;
  }
}
