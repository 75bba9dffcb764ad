#!/usr/bin/env bash
# README's first command: builds the light client's npm package (pkg/) and starts the local
# devnet, which serves the page (www/ with pkg/ at /pkg/) and prints its URL:
#
#   scripts/devnet.sh [headway devnet options]     # e.g. --block-interval-ms 300
#
# Installs what it needs on a fresh machine (the wasm32 target and wasm-bindgen-cli, via
# scripts/setup-wasm.sh; binaryen from npm for a working wasm-opt, see below).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/setup-wasm.sh

# Debian 12's wasm-opt (binaryen 108) emits a module whose `__wbindgen_externrefs` export
# names the function table, so the package fails to start in every browser ("failed to grow
# table"). binaryen 132 from npm (pinned in e2e/package-lock.json) gets it right: put it first
# on PATH for scripts/build-pkg.sh.
if [ ! -x e2e/node_modules/.bin/wasm-opt ]; then
  (cd e2e && npm ci --no-audit --no-fund)
fi
export PATH="$PWD/e2e/node_modules/.bin:$PATH"

# The 600 KiB gzip target is not met yet (about 718 KiB): build with the current ceiling.
MAX_GZIP_KIB="${MAX_GZIP_KIB:-740}" scripts/build-pkg.sh
exec cargo run --release -- devnet "$@"
