#!/usr/bin/env bash
# Builds the npm package in pkg/: the library for wasm32 in the size-tuned `wasm-release`
# profile, JS bindings (wasm-bindgen --target web), wasm-opt when installed, package.json
# from pkg/package.template.json; prints the wasm size raw and gzipped (fails above
# MAX_GZIP_KIB, 600 by default, after wasm-opt) and checks packing with `npm pack --dry-run`.
# Needs the wasm32 target and the wasm-bindgen CLI at the Cargo.lock version (.ci/run
# installs both); wasm-opt (binaryen >= 132, from e2e/'s npm dependencies) is optional.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

MAX_GZIP_KIB=${MAX_GZIP_KIB:-600}
profile=wasm-release
out=pkg

step() { printf '\n==> %s\n' "$*"; }

wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wb_version"; then
  echo "wasm-bindgen $wb_version is needed (the Cargo.lock version):" \
    "cargo install wasm-bindgen-cli --version $wb_version" >&2
  exit 1
fi

step "cargo build --lib --target wasm32-unknown-unknown --profile $profile"
cargo build --lib --target wasm32-unknown-unknown --profile "$profile"
wasm="target/wasm32-unknown-unknown/$profile/headway.wasm"

step "wasm-bindgen --target web"
rm -rf "$out/headway.js" "$out/headway.d.ts" "$out/headway_bg.wasm" "$out/headway_bg.wasm.d.ts" \
  "$out/snippets" "$out/package.json"
wasm-bindgen --target web --out-dir "$out" --out-name headway "$wasm"
bindgen_bytes=$(stat -c %s "$out/headway_bg.wasm")

# wasm-opt: binaryen 132 from e2e/'s npm dependencies when installed (`npm ci --prefix e2e`),
# else the one on PATH if it is recent enough. Debian 12's binaryen 108 is not: its output
# exports wasm-bindgen's externref table wrongly and `init()` fails with "failed to grow table".
MIN_BINARYEN=132
if [ -x e2e/node_modules/.bin/wasm-opt ]; then
  export PATH="$PWD/e2e/node_modules/.bin:$PATH"
fi
if command -v wasm-opt >/dev/null; then
  binaryen=$(wasm-opt --version | grep -o 'version [0-9]*' | head -1 | awk '{ print $2 }')
  if [ "${binaryen:-0}" -lt "$MIN_BINARYEN" ]; then
    echo "wasm-opt from binaryen ${binaryen:-?} breaks the package; binaryen >= $MIN_BINARYEN is" \
      "needed: run \`npm ci --prefix e2e\` (it installs binaryen $MIN_BINARYEN)" >&2
    exit 1
  fi
  # -Oz on top of LLVM's output: the curve crates were already compiled at opt-level 3, and
  # wasm-opt does not undo their inlining. The features are the ones rustc's wasm32 target
  # emits by default; wasm-opt must be told, or it refuses the module.
  step "wasm-opt -Oz ($(wasm-opt --version))"
  wasm-opt -Oz \
    --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-reference-types --enable-multivalue \
    "$out/headway_bg.wasm" -o "$out/headway_bg.wasm.opt"
  mv "$out/headway_bg.wasm.opt" "$out/headway_bg.wasm"
  optimized=1
else
  echo "notice: wasm-opt not found (\`npm ci --prefix e2e\` installs binaryen $MIN_BINARYEN);" \
    "the wasm is not post-optimised"
fi

version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
sed "s/@VERSION@/$version/" "$out/package.template.json" > "$out/package.json"

step "size"
raw=$(stat -c %s "$out/headway_bg.wasm")
gz=$(gzip -9 -c "$out/headway_bg.wasm" | wc -c)
printf 'headway_bg.wasm: %d bytes (%d KiB) raw, %d bytes (%d KiB) gzip -9; %d bytes before wasm-opt\n' \
  "$raw" $((raw / 1024)) "$gz" $((gz / 1024)) "$bindgen_bytes"
if [ -z "${optimized:-}" ]; then
  echo "notice: the ${MAX_GZIP_KIB} KiB budget applies to the wasm-opt output: not checked"
elif [ "$gz" -gt $((MAX_GZIP_KIB * 1024)) ]; then
  echo "the gzipped wasm is above the budget of $MAX_GZIP_KIB KiB" >&2
  exit 1
fi

step "npm pack --dry-run"
(cd "$out" && npm pack --dry-run)
