import type { UploadOptions } from '../../server/client/dfs-client';
import { OverwriteAnswer, OverwriteDecider, SkippedPath } from '../../server/client/upload-plan';
import { ErrorCode, Precondition, UploadReceipt, currentGenerationOf, toDfsError } from '../../server/protocol';
import { BatchProgress, ProgressTracker } from './progress';

/** What one entry of a batch sends: a file on disk, or an editor's unsaved text. */
export type UploadSource =
  | { kind: 'file'; localPath: string; name: string; size: number }
  | { kind: 'buffer'; origin: string; name: string; content: Buffer };

/** The part of DfsClient a batch needs, so tests can also hand in a client that fails on cue. */
export interface UploadClient {
  uploadFile(localPath: string, name: string, options?: UploadOptions): Promise<UploadReceipt>;
  upload(name: string, body: Iterable<Buffer>, size: number, options?: UploadOptions): Promise<UploadReceipt>;
}

/** How often a file that keeps changing on the server between the question and the send is asked about again. */
const MAX_OVERWRITE_ROUNDS = 5;

/** `incomplete`: stored, but fewer replicas than the write quorum confirmed it (they get it later). */
export type OutcomeStatus = 'uploaded' | 'incomplete' | 'skipped' | 'failed' | 'unknown' | 'cancelled';

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
 * Sends files one after another. Each file goes first with the precondition "absent",
 * so nothing is ever replaced without the user's word; when the name exists the
 * server says so (CONFLICT, with its current generation) before any byte is sent,
 * the user is asked, and an overwrite is sent with the precondition "still at that
 * generation", so a version stored by someone else in the meantime is not replaced
 * blind either: the user is asked again. Each file's failure is recorded with its
 * reason and the batch moves on, because one bad file should not cost the user the
 * rest; only a cancel ends it early.
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
    const send = (precondition: Precondition): Promise<UploadReceipt> => {
      const transfer: UploadOptions = {
        signal: options.signal,
        precondition,
        onProgress: (bytes) => options.onProgress?.(tracker.update(index, bytes), source.name),
      };
      return source.kind === 'file'
        ? options.client.uploadFile(source.localPath, source.name, transfer)
        : options.client.upload(source.name, [source.content], source.content.length, transfer);
    };
    let precondition: Precondition = { kind: 'absent' };
    let outcome: FileOutcome | undefined;
    for (let round = 0; !outcome; round++) {
      try {
        outcome = { origin, name: source.name, status: 'uploaded', receipt: await send(precondition) };
      } catch (error) {
        const current = currentGenerationOf(error);
        if (typeof current === 'number' && round < MAX_OVERWRITE_ROUNDS) {
          const decision = await decider.decide(source.name, true, options.askOverwrite);
          if (decision === 'cancel') {
            cancelled = true;
            outcome = { origin, name: source.name, status: 'cancelled', code: 'CANCELLED', reason: 'cancelled at the overwrite question' };
          } else if (!decision) {
            outcome = { origin, name: source.name, status: 'skipped', reason: 'a file with this name is already stored' };
          } else {
            precondition = { kind: 'generation', generation: current };
          }
          continue;
        }
        if (current === null && round < MAX_OVERWRITE_ROUNDS) {
          // Deleted after the question: it may be stored as new again, still never blind.
          precondition = { kind: 'absent' };
          continue;
        }
        // The client knows whether a cancel came in time to stop the transfer; after the
        // last byte it reports what the primary did instead, and that is what we show.
        const failure = toDfsError(error);
        if (failure.code === 'CANCELLED') {
          cancelled = true;
        }
        const statusOf: Partial<Record<string, OutcomeStatus>> = { CANCELLED: 'cancelled', INCOMPLETE: 'incomplete', OUTCOME_UNKNOWN: 'unknown' };
        const status = statusOf[failure.code] ?? 'failed';
        outcome = { origin, name: source.name, status, code: failure.code, reason: failure.message };
      }
    }
    record(outcome);
    options.onProgress?.(tracker.settle(index), sources[index + 1]?.name);
  }
  return { outcomes, cancelled };
}

export interface BatchSummary {
  uploaded: number;
  skipped: number;
  failed: number;
  /** Uploads whose answer was lost and whose outcome the primary can no longer tell. */
  unknown: number;
  cancelled: number;
  /** One line for a notification. */
  text: string;
}

export function summarizeBatch(result: BatchResult): BatchSummary {
  const count = (status: OutcomeStatus): number => result.outcomes.filter((outcome) => outcome.status === status).length;
  const uploaded = count('uploaded');
  const incomplete = count('incomplete');
  const skipped = count('skipped');
  const failed = count('failed');
  const unknown = count('unknown');
  const cancelled = count('cancelled');
  const parts = [`${uploaded + incomplete} uploaded`];
  if (skipped > 0) parts.push(`${skipped} skipped`);
  if (failed > 0) parts.push(`${failed} failed`);
  if (unknown > 0) parts.push(`${unknown} of unknown outcome`);
  if (cancelled > 0) parts.push(`${cancelled} cancelled`);
  const short = result.outcomes.filter((outcome) => outcome.status === 'uploaded' && (outcome.receipt?.replicasBehind.length ?? 0) > 0).length;
  const shortNote =
    (short > 0 ? ` ${short} stored with fewer copies than configured: the missing replicas get them when they are back.` : '') +
    (incomplete > 0 ? ` ${incomplete} stored with fewer copies than the write quorum requires (replicas failed while committing): they are copied when those replicas answer.` : '');
  const firstFailure = result.outcomes.find((outcome) => outcome.status === 'failed' || outcome.status === 'unknown');
  const reason = firstFailure ? ` First failure: ${firstFailure.name ?? firstFailure.origin}: ${firstFailure.reason}` : '';
  return { uploaded, skipped, failed, unknown, cancelled, text: `DFS upload: ${parts.join(', ')}.${shortNote}${reason}` };
}

function sizeOf(source: UploadSource): number {
  return source.kind === 'file' ? source.size : source.content.length;
}

function originOf(source: UploadSource): string {
  return source.kind === 'file' ? source.localPath : source.origin;
}
