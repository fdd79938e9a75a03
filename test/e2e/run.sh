#!/usr/bin/env bash
# The end-to-end test as CI runs it (`npm run test:e2e`):
#   1. test/e2e/setup.sh installs code-server, Node 24, Chromium and playwright-core
#      into ${DFS_E2E_CACHE:-$HOME/.cache/dfs-e2e} where missing (minutes the first
#      time on a fresh machine, ~0.1 s once cached);
#   2. `npm run package` when dfs.vsix is missing or older than anything it is built
#      from (manifest, bundles, extension/ and server/ sources, media, README, LICENSE);
#   3. node test/e2e/dfs.mjs: the steps in a real VS Code, with screenshots in
#      test/e2e/output/.
# Exit code: that of dfs.mjs (0 only when every step passes and nothing is left running).
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '[e2e-run] %s\n' "$*" >&2; }

bash test/e2e/setup.sh

CACHE="${DFS_E2E_CACHE:-$HOME/.cache/dfs-e2e}"
mkdir -p "$CACHE"
# Keep the list in step with VSIX_INPUTS in dfs.mjs.
INPUTS=(package.json .vscodeignore README.md LICENSE esbuild.mjs dist/dfs.js dist/extension.js media extension server)

if [ -n "${DFS_E2E_VSIX:-}" ]; then
  log "using DFS_E2E_VSIX=$DFS_E2E_VSIX as it is"
else
  # One packaging at a time on this machine (two e2e runs would both write dfs.vsix).
  exec 9>"$CACHE/package.lock"
  flock 9
  stale=""
  if [ ! -f dfs.vsix ]; then
    stale="dfs.vsix is missing"
  else
    newer="$(find "${INPUTS[@]}" -type f -newer dfs.vsix -print -quit 2>/dev/null || true)"
    [ -z "$newer" ] || stale="dfs.vsix is older than $newer"
  fi
  if [ -n "$stale" ]; then
    log "$stale: npm run package"
    npm run package
  else
    log "dfs.vsix is up to date"
  fi
  flock -u 9
  exec 9>&-
fi

exec node test/e2e/dfs.mjs "$@"
