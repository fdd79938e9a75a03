import { Writable } from 'stream';
import { DownloadOptions, DownloadResult, askedAgainIfCut } from '../../server/client/dfs-client';

/** What can stream a stored file: the primaries' client, or the read-only fallback to the replicas. */
export interface DownloadSource {
  download(name: string, sink: Writable, options?: DownloadOptions): Promise<DownloadResult>;
}

/**
 * A stored file's bytes in memory, checksum verified, for an editor or a diff. A
 * transfer cut short (how a node ends the download of a copy it finds damaged, then
 * repairs it) is asked for once more from the start, as `dfs get -o` and the tree's
 * Download (downloadToFile) do: each attempt fills a buffer of its own, so nothing of a
 * cut one is ever shown.
 */
export function downloadBytes(source: DownloadSource, name: string, options: DownloadOptions = {}): Promise<{ bytes: Buffer; result: DownloadResult }> {
  return askedAgainIfCut(options.signal, async () => {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    const result = await source.download(name, sink, options);
    return { bytes: Buffer.concat(chunks), result };
  });
}
