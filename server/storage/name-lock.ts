type Mode = 'shared' | 'exclusive';

interface Waiter {
  mode: Mode;
  grant: () => void;
}

interface LockState {
  shared: number;
  exclusive: boolean;
  waiters: Waiter[];
}

/**
 * Orders changes to names on one node. A change to `a/b/c` holds `a/b/c` exclusively
 * and shares its folders `a` and `a/b`, so it runs alongside changes to `a/x` but
 * never alongside a change to the file `a` (which holds `a` exclusively): a name and
 * its folder prefixes are ordered the same way wherever they meet. Reading holds the
 * name shared. Locks are taken from the top folder down and granted first come first
 * served, so no two holders can wait on each other.
 */
export class NameLock {
  private readonly locks = new Map<string, LockState>();

  /** Runs `work` while holding `name` exclusively (or shared, to read) and its folders shared. */
  async run<T>(clientId: string, name: string, work: () => Promise<T>, mode: Mode = 'exclusive'): Promise<T> {
    const keys = lockKeys(clientId, name);
    const held: { key: string; mode: Mode }[] = [];
    try {
      for (let index = 0; index < keys.length; index++) {
        const keyMode: Mode = index === keys.length - 1 ? mode : 'shared';
        await this.acquire(keys[index], keyMode);
        held.push({ key: keys[index], mode: keyMode });
      }
      return await work();
    } finally {
      for (const { key, mode: heldMode } of held.reverse()) {
        this.release(key, heldMode);
      }
    }
  }

  /**
   * Runs `work` holding several names exclusively (a rename's two) and their folders
   * shared. The keys are taken in one global order (sorted: a folder sorts before
   * what it holds, so this is the order run() takes them in too), so no holder of
   * some of them waits on a holder of others.
   */
  async runAll<T>(clientId: string, names: readonly string[], work: () => Promise<T>): Promise<T> {
    const modes = new Map<string, Mode>();
    for (const name of names) {
      const keys = lockKeys(clientId, name);
      keys.forEach((key, index) => {
        if (index === keys.length - 1) {
          modes.set(key, 'exclusive');
        } else if (!modes.has(key)) {
          modes.set(key, 'shared');
        }
      });
    }
    const held: { key: string; mode: Mode }[] = [];
    try {
      for (const key of [...modes.keys()].sort()) {
        await this.acquire(key, modes.get(key)!);
        held.push({ key, mode: modes.get(key)! });
      }
      return await work();
    } finally {
      for (const { key, mode } of held.reverse()) {
        this.release(key, mode);
      }
    }
  }

  private acquire(key: string, mode: Mode): Promise<void> {
    let state = this.locks.get(key);
    if (!state) {
      state = { shared: 0, exclusive: false, waiters: [] };
      this.locks.set(key, state);
    }
    if (state.waiters.length === 0 && compatible(state, mode)) {
      take(state, mode);
      return Promise.resolve();
    }
    return new Promise((resolve) => state!.waiters.push({ mode, grant: resolve }));
  }

  private release(key: string, mode: Mode): void {
    const state = this.locks.get(key)!;
    if (mode === 'exclusive') {
      state.exclusive = false;
    } else {
      state.shared--;
    }
    while (state.waiters.length > 0 && compatible(state, state.waiters[0].mode)) {
      const waiter = state.waiters.shift()!;
      take(state, waiter.mode);
      waiter.grant();
    }
    if (state.shared === 0 && !state.exclusive && state.waiters.length === 0) {
      this.locks.delete(key);
    }
  }
}

function compatible(state: LockState, mode: Mode): boolean {
  return mode === 'shared' ? !state.exclusive : !state.exclusive && state.shared === 0;
}

function take(state: LockState, mode: Mode): void {
  if (mode === 'exclusive') {
    state.exclusive = true;
  } else {
    state.shared++;
  }
}

/** `a`, `a/b`, `a/b/c` for `a/b/c`, each qualified by the client. */
function lockKeys(clientId: string, name: string): string[] {
  const keys: string[] = [];
  for (let slash = name.indexOf('/'); slash !== -1; slash = name.indexOf('/', slash + 1)) {
    keys.push(`${clientId}\u0000${name.slice(0, slash)}`);
  }
  keys.push(`${clientId}\u0000${name}`);
  return keys;
}
