import * as assert from 'assert';

/** Awaits `promise`, which must reject with an instance of `type` carrying `code`; returns that error. */
export async function rejectsWithCode<E extends Error & { code: string }>(promise: Promise<unknown>, type: new (...args: never[]) => E, code: E['code']): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
    assert.strictEqual(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${type.name} ${code}, but it succeeded`);
}
