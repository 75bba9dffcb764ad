#!/usr/bin/env bash
# End-to-end test of the devnet page in real browsers (e2e/e2e.test.mjs: Chromium over
# WebSocket and WebRTC, Firefox ESR over WebSocket), and `tsc --noEmit` of the TypeScript
# example against the built package's types. Saves docs/screenshot.png.
#
#   scripts/e2e.sh                          # debug build of the node (what scripts/test.sh builds)
#   HEADWAY_PROFILE=release scripts/e2e.sh  # release build
#   E2E_CASES=chromium-ws scripts/e2e.sh    # one case (see e2e/e2e.test.mjs for the others)
#
# Needs what .ci/run installs (wasm32 target, wasm-bindgen-cli, chromium, firefox-esr) and npm.
# No browser is downloaded: playwright-core and puppeteer-core drive Debian's.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
t_start=$SECONDS
timing() { printf 'timing: %s: %d s\n' "$1" $((SECONDS - $2)); }

step "npm ci (e2e/: playwright-core, puppeteer-core, typescript, binaryen)"
t=$SECONDS
(cd e2e && npm ci --no-audit --no-fund)
timing "npm ci" "$t"

step "npm package (scripts/build-pkg.sh, wasm-opt from binaryen 132)"
# build-pkg.sh takes wasm-opt from e2e's binaryen 132 (Debian's 108 breaks the module).
t=$SECONDS
scripts/build-pkg.sh
timing "build-pkg" "$t"

step "tsc --noEmit e2e/example.ts against pkg/headway.d.ts"
t=$SECONDS
(cd e2e && npx tsc --noEmit -p tsconfig.json)
timing "tsc" "$t"

profile=${HEADWAY_PROFILE:-debug}
step "cargo build --bin headway ($profile)"
t=$SECONDS
if [ "$profile" = release ]; then
  cargo build --release --bin headway
else
  cargo build --bin headway
fi
timing "cargo build" "$t"

step "page end-to-end in Chromium and Firefox ESR (e2e/e2e.test.mjs)"
t=$SECONDS
(cd e2e && HEADWAY_BIN="target/$profile/headway" node --test --test-reporter=spec e2e.test.mjs)
timing "browser e2e" "$t"
timing "scripts/e2e.sh total" "$t_start"
