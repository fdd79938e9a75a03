import * as assert from 'assert';
import { COMMANDS, CommandName, acceptedFlags, commandHelp, commandList } from '../../server/cli/args';

describe('cli: help from one declaration per command', () => {
  const commands = Object.keys(COMMANDS) as CommandName[];

  it('every flag a command parses appears in its help, and its help names no flag it would refuse', () => {
    for (const command of commands) {
      const help = commandHelp(command);
      const accepted = acceptedFlags(command);
      for (const flag of accepted) {
        assert.match(help, new RegExp(`(^|\\s)--${flag}\\b`), `dfs ${command} --help omits --${flag}`);
      }
      for (const shown of help.matchAll(/^ {2}(?:-\w, )?--([a-z-]+)/gm)) {
        assert.ok(accepted.includes(shown[1]), `dfs ${command} --help lists --${shown[1]}, which it does not accept`);
      }
    }
  });

  it('dfs primary --help lists the secret, TLS and limit flags the issue found missing', () => {
    const help = commandHelp('primary');
    for (const flag of ['--secret-file', '--tls-cert', '--tls-key', '--tls-ca', '--max-connections', '--min-free', '--quota', '--max-file-size', '--etcd']) {
      assert.ok(help.includes(flag), `${flag} missing`);
    }
  });

  it('a replica accepts the primary\'s flags (one command line for every server) and says it ignores them', () => {
    const help = commandHelp('replica');
    const [used, ignored] = help.split('Also accepted, and ignored');
    assert.ok(ignored.includes('--write-quorum') && ignored.includes('--keep-versions'));
    assert.ok(!used.includes('--write-quorum'));
    assert.ok(acceptedFlags('replica').includes('sync-interval'));
  });

  it('the command list names every command once', () => {
    const list = commandList();
    for (const command of commands) {
      assert.strictEqual(list.split('\n').filter((line) => line.startsWith(`  dfs ${command} `) || line === `  dfs ${command}`).length, 1, command);
    }
  });
});
