import type { Context } from 'mocha';
import { escapeFailure, takeEscapes } from './escapes';
import { killAllChildren } from './processes';

/**
 * Root hooks: no test leaves a server process behind, even when it fails, and a test
 * fails when any server logged an escaped error during it (a server keeps serving
 * after one, so nothing else would notice).
 */
export const mochaHooks = {
  afterEach(this: Context): void {
    const failure = escapeFailure(takeEscapes(), `during (or in the hooks just before) "${this.currentTest?.fullTitle()}"`);
    if (failure) {
      // Fails this test without aborting the rest of the run (an afterEach that throws would).
      (this.test as unknown as { error(error: Error): void }).error(failure);
    }
  },
  async afterAll(): Promise<void> {
    await killAllChildren();
    const failure = escapeFailure(takeEscapes(), 'after the last test');
    if (failure) {
      throw failure;
    }
  },
};
