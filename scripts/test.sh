#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy for both targets, native tests, and the same
# core tests compiled to wasm32 and run in headless Chromium. Needs what .ci/run installs
# (the wasm32 target, wasm-bindgen-cli matching Cargo.lock, chromium and chromedriver).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (native, all targets)"
cargo clippy --all-targets -- -D warnings

step "clippy (wasm32: library and tests)"
cargo clippy --target wasm32-unknown-unknown --lib --tests -- -D warnings

step "native tests"
cargo test

step "wasm32 tests in headless Chromium"
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
cargo test --target wasm32-unknown-unknown --lib --tests

step "wasm32 library build"
cargo build --target wasm32-unknown-unknown --lib

# Benchmarks are type-checked by clippy --all-targets above; building them in the release
# profile would double CI time, so `cargo bench` is left to BENCHMARKS.md runs.
