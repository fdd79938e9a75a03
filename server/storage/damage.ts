import { versionKey } from './catalog';

/**
 * Versions a node holds (in its catalog) whose bytes are missing or wrong on its disk,
 * with why: such bytes are never served, and catch-up or a repair supplies good ones.
 */
export class DamageMarks {
  private readonly reasons = new Map<string, string>();

  mark(clientId: string, name: string, generation: number, reason: string): void {
    this.reasons.set(versionKey(clientId, name, generation), reason);
  }

  clear(clientId: string, name: string, generation: number): void {
    this.reasons.delete(versionKey(clientId, name, generation));
  }

  has(clientId: string, name: string, generation: number): boolean {
    return this.reasons.has(versionKey(clientId, name, generation));
  }

  reason(clientId: string, name: string, generation: number): string | undefined {
    return this.reasons.get(versionKey(clientId, name, generation));
  }

  get size(): number {
    return this.reasons.size;
  }

  clearAll(): void {
    this.reasons.clear();
  }
}
