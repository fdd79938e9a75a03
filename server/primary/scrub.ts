import { refuseIfChallenged } from '../net/handshake';
import { InventoryRecord, ScrubReport, decodeListing, formatRequest } from '../protocol';
import { fileKey } from '../storage/key-lock';
import type { CatchUp } from './catch-up';
import { repairVersion } from './copy-from-replica';
import type { PrimaryContext } from './primary-context';
import type { ReplicaLink } from './replica-link';

/**
 * Verifies every copy of every kept version against its checksum and repairs what
 * fails: the primary's own copies from a replica whose bytes still hash right, the
 * replicas' from the primary through catch-up (a replica marks a copy that fails its
 * own check as damaged, which its inventory then shows).
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
    const store = this.primary.store;
    for (const { state } of [...store.catalog.index.all()]) {
      for (const version of state.versions) {
        report.checked++;
        const intact =
          store.hasBytes(version.clientId, version.name, version.generation) &&
          (await store.verify(version.clientId, version.name, version.generation).catch((error: Error) => {
            this.primary.log(`scrub: skipped ${version.clientId}/${version.name} generation ${version.generation}: ${error.message}`);
            return true;
          }));
        if (intact) {
          continue;
        }
        report.primaryCorrupted++;
        if (await repairVersion(this.primary, version)) {
          report.primaryRepaired++;
        } else {
          report.unrecoverable.push(`${version.clientId}/${version.name}${version === state.versions[0] ? '' : ` (generation ${version.generation})`}`);
        }
      }
    }
    await Promise.all(
      this.primary.links.map(async (link) => {
        try {
          const corrupted = await scrubReplica(link);
          report.replicaCorrupted[link.address.id] = corrupted.length;
          for (const record of corrupted) {
            link.markBehind(fileKey(record.clientId, record.name));
            this.primary.log(`scrub: ${link.label} held a corrupted copy of ${record.clientId}/${record.name} generation ${record.generation}`);
          }
        } catch {
          report.unreachable.push(link.address.id);
        }
      }),
    );
    await this.catchUp.runNow();
    this.primary.log(
      `scrub: ${report.checked} versions checked; primary ${report.primaryCorrupted} corrupted, ${report.primaryRepaired} repaired; replicas ${JSON.stringify(report.replicaCorrupted)}`,
    );
    return report;
  }
}

async function scrubReplica(link: ReplicaLink): Promise<InventoryRecord[]> {
  const conn = await link.connect();
  try {
    await conn.writeLine(formatRequest({ verb: 'SCRUB' }));
    // A scrub reads every byte the replica holds: allow it time.
    const text = (await conn.readToEnd(256 * 1024 * 1024, 10 * 60_000)).toString('utf8');
    return decodeListing<InventoryRecord>(refuseIfChallenged(text)).records;
  } finally {
    conn.destroy();
  }
}
