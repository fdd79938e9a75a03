/**
 * Waits until `condition` holds, checking every few milliseconds; used for state that
 * has no event of its own (a file appearing on disk). Fails with `what` on timeout.
 */
export async function waitFor<T>(condition: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
