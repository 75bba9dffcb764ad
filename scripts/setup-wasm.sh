#!/usr/bin/env bash
# Installs what building the browser light client needs and a fresh machine lacks: the
# wasm32-unknown-unknown target and wasm-bindgen-cli at exactly the version in Cargo.lock
# (the test runner refuses any other). Used by .ci/run and scripts/devnet.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

rustup target add wasm32-unknown-unknown

wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
if [ -z "$wb_version" ]; then
  echo "wasm-bindgen not found in Cargo.lock" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wb_version"; then
  # No --locked: the registry here lacks a crate version that the CLI's lock file names.
  cargo install wasm-bindgen-cli --version "$wb_version"
fi
