import { killAllChildren } from './processes';

/** Root hooks: no test leaves a server process behind, even when it fails. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await killAllChildren();
  },
};
