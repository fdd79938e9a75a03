import type { TransferOptions } from '../../server/client/dfs-client';
import { OverwriteAnswer, OverwriteDecider, SkippedPath } from '../../server/client/upload-plan';
import { DfsError, ErrorCode, FileRecord, UploadReceipt, toDfsError } from '../../server/protocol';
import { BatchProgress, ProgressTracker } from './progress';

/** What one entry of a batch sends: a file on disk, or an editor's unsaved text. */
export type UploadSource =
  | { kind: 'file'; localPath: string; name: string; size: number }
  | { kind: 'buffer'; origin: string; name: string; content: Buffer };

/** The part of DfsClient a batch needs, so tests can also hand in a client that fails on cue. */
export interface UploadClient {
  uploadFile(localPath: string, name: string, options?: TransferOptions): Promise<UploadReceipt>;
  upload(name: string, body: Iterable<Buffer>, size: number, options?: TransferOptions): Promise<UploadReceipt>;
  files(): Promise<FileRecord[]>;
}

export type OutcomeStatus = 'uploaded' | 'skipped' | 'failed' | 'cancelled';

export interface FileOutcome {
  /** The local path or editor the bytes came from. */
  origin: string;
  /** The stored name; absent when the path never became a name (an unreadable folder). */
  name?: string;
  status: OutcomeStatus;
  code?: ErrorCode;
  reason?: string;
  receipt?: UploadReceipt;
}

export interface BatchResult {
  outcomes: FileOutcome[];
  /** The user cancelled (through the progress or the overwrite question). */
  cancelled: boolean;
}

export interface BatchOptions {
  client: UploadClient;
  sources: readonly UploadSource[];
  /** Paths the planner could not turn into uploads; reported as failures with their reason. */
  unplannable?: readonly SkippedPath[];
  askOverwrite: (name: string) => Promise<OverwriteAnswer | undefined>;
  decider?: OverwriteDecider;
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress, current: string | undefined) => void;
  onOutcome?: (outcome: FileOutcome) => void;
}

/**
 * Sends files one after another. Each file's failure is recorded with its reason and
 * the batch moves on, because one bad file should not cost the user the rest; only a
 * cancel ends it early.
 */
export async function runUploadBatch(options: BatchOptions): Promise<BatchResult> {
  const outcomes: FileOutcome[] = [];
  const record = (outcome: FileOutcome): void => {
    outcomes.push(outcome);
    options.onOutcome?.(outcome);
  };
  for (const skipped of options.unplannable ?? []) {
    record({ origin: skipped.localPath, status: 'failed', code: 'BAD_FILE_NAME', reason: skipped.reason });
  }

  const sources = options.sources;
  const tracker = new ProgressTracker(sources.map(sizeOf));
  const decider = options.decider ?? new OverwriteDecider();
  let existing: Set<string>;
  try {
    existing = await existingNames(options.client, options.signal);
  } catch (error) {
    const failure = toDfsError(error);
    for (const source of options.sources) {
      record({ origin: originOf(source), name: source.name, status: 'failed', code: failure.code, reason: failure.message });
    }
    return { outcomes, cancelled: false };
  }
  let cancelled = false;
  options.onProgress?.(tracker.snapshot(), sources[0]?.name);

  for (let index = 0; index < sources.length; index++) {
    const source = sources[index];
    const origin = originOf(source);
    if (cancelled || options.signal?.aborted) {
      cancelled = true;
      record({ origin, name: source.name, status: 'cancelled', code: 'CANCELLED', reason: 'cancelled before it started' });
      tracker.settle(index);
      continue;
    }
    const decision = await decider.decide(source.name, existing.has(source.name), options.askOverwrite);
    if (decision === 'cancel') {
      cancelled = true;
      record({ origin, name: source.name, status: 'cancelled', code: 'CANCELLED', reason: 'cancelled at the overwrite question' });
      options.onProgress?.(tracker.settle(index), undefined);
      continue;
    }
    if (!decision) {
      record({ origin, name: source.name, status: 'skipped', reason: 'a file with this name is already stored' });
      options.onProgress?.(tracker.settle(index), sources[index + 1]?.name);
      continue;
    }
    const transfer: TransferOptions = {
      signal: options.signal,
      onProgress: (bytes) => options.onProgress?.(tracker.update(index, bytes), source.name),
    };
    try {
      const receipt =
        source.kind === 'file'
          ? await options.client.uploadFile(source.localPath, source.name, transfer)
          : await options.client.upload(source.name, [source.content], source.content.length, transfer);
      existing.add(source.name);
      record({ origin, name: source.name, status: 'uploaded', receipt });
    } catch (error) {
      // The client knows whether a cancel came in time to stop the transfer; after the
      // last byte it reports what the primary did instead, and that is what we show.
      const failure = toDfsError(error);
      if (failure.code === 'CANCELLED') {
        cancelled = true;
      }
      record({ origin, name: source.name, status: failure.code === 'CANCELLED' ? 'cancelled' : 'failed', code: failure.code, reason: failure.message });
    }
    options.onProgress?.(tracker.settle(index), sources[index + 1]?.name);
  }
  return { outcomes, cancelled };
}

export interface BatchSummary {
  uploaded: number;
  skipped: number;
  failed: number;
  cancelled: number;
  /** One line for a notification. */
  text: string;
}

export function summarizeBatch(result: BatchResult): BatchSummary {
  const count = (status: OutcomeStatus): number => result.outcomes.filter((outcome) => outcome.status === status).length;
  const uploaded = count('uploaded');
  const skipped = count('skipped');
  const failed = count('failed');
  const cancelled = count('cancelled');
  const parts = [`${uploaded} uploaded`];
  if (skipped > 0) parts.push(`${skipped} skipped`);
  if (failed > 0) parts.push(`${failed} failed`);
  if (cancelled > 0) parts.push(`${cancelled} cancelled`);
  const short = result.outcomes.filter((outcome) => outcome.status === 'uploaded' && (outcome.receipt?.replicasBehind.length ?? 0) > 0).length;
  const shortNote = short > 0 ? ` ${short} stored with fewer copies than configured: the missing replicas get them when they are back.` : '';
  const firstFailure = result.outcomes.find((outcome) => outcome.status === 'failed');
  const reason = firstFailure ? ` First failure: ${firstFailure.name ?? firstFailure.origin}: ${firstFailure.reason}` : '';
  return { uploaded, skipped, failed, cancelled, text: `DFS upload: ${parts.join(', ')}.${shortNote}${reason}` };
}

/**
 * Names already stored, so the user is asked before anything is replaced. When the
 * listing fails the batch still runs: each upload then reports the real reason.
 */
async function existingNames(client: UploadClient, signal: AbortSignal | undefined): Promise<Set<string>> {
  if (signal?.aborted) {
    return new Set();
  }
  try {
    return new Set((await client.files()).map((file) => file.name));
  } catch (error) {
    // Without the list nobody could be asked before an overwrite: better no upload
    // than a silent one. Each file then fails with this reason.
    throw new DfsError('UNREACHABLE', `cannot check which names are already stored (${toDfsError(error).message}); nothing was uploaded`);
  }
}

function sizeOf(source: UploadSource): number {
  return source.kind === 'file' ? source.size : source.content.length;
}

function originOf(source: UploadSource): string {
  return source.kind === 'file' ? source.localPath : source.origin;
}
