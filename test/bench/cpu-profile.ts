import { promises as fs } from 'fs';
import * as path from 'path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  /** Sampled time outside "(idle)": what the process spent on the CPU, roughly. */
  busyMs: number;
  top: { name: string; selfMs: number; share: number }[];
}

/** Self time per function of one .cpuprofile, largest first. */
export async function summariseProfile(file: string, topN = 12): Promise<ProfileSummary> {
  const profile = JSON.parse(await fs.readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, index) => {
    const node = byId.get(id);
    if (!node) {
      return;
    }
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? ` ${path.basename(url)}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'}${where}`;
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[index] ?? 0) / 1000);
  });
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  const busyMs = [...self.entries()].filter(([name]) => name !== '(idle)').reduce((sum, [, ms]) => sum + ms, 0);
  const top = [...self.entries()]
    .filter(([name]) => name !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([name, selfMs]) => ({ name, selfMs, share: busyMs > 0 ? selfMs / busyMs : 0 }));
  return { file, wallMs, busyMs, top };
}

/** Every profile under `dir`, summarised, as text. */
export async function summariseProfiles(dir: string): Promise<string> {
  const files: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await fs.readdir(folder, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        await walk(full);
      } else if (entry.name.endsWith('.cpuprofile')) {
        files.push(full);
      }
    }
  };
  await walk(dir);
  const parts: string[] = [];
  for (const file of files.sort()) {
    const summary = await summariseProfile(file);
    parts.push(`${path.relative(dir, file)}: ${summary.busyMs.toFixed(0)} ms on CPU of ${summary.wallMs.toFixed(0)} ms`);
    for (const entry of summary.top) {
      parts.push(`  ${entry.selfMs.toFixed(0).padStart(7)} ms ${(entry.share * 100).toFixed(1).padStart(5)}%  ${entry.name}`);
    }
  }
  return parts.join('\n');
}
