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

# Debian 12's wasm-opt (binaryen 108) breaks the package; scripts/build-pkg.sh uses binaryen
# 132 from e2e/'s npm dependencies, installed here if missing.
if [ ! -x e2e/node_modules/.bin/wasm-opt ]; then
  (cd e2e && npm ci --no-audit --no-fund)
fi

scripts/build-pkg.sh
exec cargo run --release -- devnet "$@"
