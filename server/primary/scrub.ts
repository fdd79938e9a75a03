import { refuseIfChallenged } from '../net/handshake';
import { FileRecord, Reply, ScrubReport, decodeRecords, formatRequest, parseReply, replyError } from '../protocol';
import { fileKey } from '../storage/key-lock';
import type { CatchUp } from './catch-up';
import { copyFromReplica } from './copy-from-replica';
import type { PrimaryContext } from './primary-context';
import type { ReplicaLink } from './replica-link';


/**
 * Verifies every copy against its checksum and repairs what fails: the primary's own
 * copies from a replica whose bytes still hash right, the replicas' from the primary
 * through catch-up (a replica drops a copy that fails its own check, which makes it
 * "behind").
 */
export class Scrubber {
  private running: Promise<ScrubReport> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly primary: PrimaryContext,
    private readonly catchUp: CatchUp,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => void this.run().catch(() => undefined), this.intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  run(): Promise<ScrubReport> {
    this.running ??= this.scrub().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async scrub(): Promise<ScrubReport> {
    const report: ScrubReport = { checked: 0, primaryCorrupted: 0, primaryRepaired: 0, replicaCorrupted: {}, unreachable: [], unrecoverable: [] };
    for (const record of this.primary.store.all()) {
      report.checked++;
      const intact = await this.primary.store.verify(record.clientId, record.name).catch((error: Error) => {
        this.primary.log(`scrub: skipped ${record.clientId}/${record.name}: ${error.message}`);
        return true;
      });
      if (intact) {
        continue;
      }
      report.primaryCorrupted++;
      if (await this.repairPrimaryCopy(record)) {
        report.primaryRepaired++;
      } else {
        report.unrecoverable.push(`${record.clientId}/${record.name}`);
      }
    }
    await Promise.all(
      this.primary.links.map(async (link) => {
        try {
          const corrupted = await scrubReplica(link);
          report.replicaCorrupted[link.address.id] = corrupted.length;
          for (const record of corrupted) {
            link.markBehind(record.clientId, record.name);
            this.primary.log(`scrub: ${link.label} held a corrupted copy of ${record.clientId}/${record.name}`);
          }
        } catch {
          report.unreachable.push(link.address.id);
        }
      }),
    );
    await this.catchUp.runNow();
    this.primary.log(
      `scrub: ${report.checked} files checked; primary ${report.primaryCorrupted} corrupted, ${report.primaryRepaired} repaired; replicas ${JSON.stringify(report.replicaCorrupted)}`,
    );
    return report;
  }

  /**
   * Rewrites the primary's copy from the first replica whose bytes hash to the
   * recorded checksum. Returns false when no replica has a good copy.
   */
  async repairPrimaryCopy(record: FileRecord): Promise<boolean> {
    for (const link of this.primary.links) {
      try {
        const repaired = await this.primary.locks.run(fileKey(record.clientId, record.name), async () => {
          const current = this.primary.store.get(record.clientId, record.name);
          if (!current || current.sha256 !== record.sha256) {
            return true; // Replaced meanwhile by a fresh upload: nothing left to repair.
          }
          await copyFromReplica(this.primary, link, record);
          return true;
        });
        if (repaired) {
          link.repairs++;
          this.primary.log(`repair: primary copy of ${record.clientId}/${record.name} rewritten from ${link.label}`);
          return true;
        }
      } catch (error) {
        this.primary.log(`repair: ${link.label} cannot supply ${record.clientId}/${record.name}: ${(error as Error).message}`);
      }
    }
    return false;
  }
}

async function scrubReplica(link: ReplicaLink): Promise<FileRecord[]> {
  const conn = await link.connect();
  try {
    await conn.writeLine(formatRequest({ verb: 'SCRUB' }));
    // A scrub reads every byte the replica holds: allow it time.
    const reply = parseReply(refuseIfChallenged(await conn.readLine(10 * 60_000)));
    if (reply.token !== Reply.OK) {
      throw replyError(reply);
    }
    return decodeRecords<FileRecord>((await conn.readToEnd(256 * 1024 * 1024)).toString('utf8'));
  } finally {
    conn.destroy();
  }
}
