#!/usr/bin/env python3
"""Where the browser build's code bytes go, by crate.

Reads a wasm module that still has its `name` section (cargo's output, before wasm-bindgen and
wasm-opt: target/wasm32-unknown-unknown/wasm-release/headway.wasm after scripts/build-pkg.sh),
sums each function body's size under the crate its (mangled) name starts with, and prints the
largest. Generic code counts where its path starts: `alloc`, `core` and `hashbrown` are mostly
collections and formatting instantiated for headway's and libp2p's types. `alloc<>`/`core<>` are
trait impls on those crates' types (`<Vec<T> as ...>`). Sizes are before wasm-opt, which shrinks
the whole by about 45%: compare shares, not bytes, with the shipped file.

    python3 scripts/wasm-size-report.py target/wasm32-unknown-unknown/wasm-release/headway.wasm [TOP]
"""
import collections
import re
import sys


def leb128(buf, i):
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def skip_limits(buf, i):
    flags = buf[i]
    _, i = leb128(buf, i + 1)
    if flags & 1:
        _, i = leb128(buf, i)
    return i


def read_module(data):
    """(function imports, body sizes, function names by index, data bytes)."""
    assert data[:4] == b"\0asm", "not a wasm module"
    i, imports, bodies, names, data_bytes = 8, 0, [], {}, 0
    while i < len(data):
        section = data[i]
        size, i = leb128(data, i + 1)
        body, i = data[i:i + size], i + size
        if section == 2:  # imports: functions come first in the index space
            count, j = leb128(body, 0)
            for _ in range(count):
                for _ in range(2):  # module and field names
                    length, j = leb128(body, j)
                    j += length
                kind, j = body[j], j + 1
                if kind == 0:
                    _, j = leb128(body, j)
                    imports += 1
                elif kind == 1:  # table: reftype, limits
                    j = skip_limits(body, j + 1)
                elif kind == 2:  # memory
                    j = skip_limits(body, j)
                elif kind == 3:  # global: valtype, mutability
                    j += 2
        elif section == 10:
            count, j = leb128(body, 0)
            for _ in range(count):
                length, j = leb128(body, j)
                bodies.append(length)
                j += length
        elif section == 11:
            data_bytes += size
        elif section == 0:
            length, j = leb128(body, 0)
            if body[j:j + length] != b"name":
                continue
            j += length
            while j < len(body):
                sub = body[j]
                sub_size, j = leb128(body, j + 1)
                end = j + sub_size
                if sub == 1:
                    count, k = leb128(body, j)
                    for _ in range(count):
                        index, k = leb128(body, k)
                        length, k = leb128(body, k)
                        names[index] = body[k:k + length].decode("utf-8", "replace")
                        k += length
                j = end
    return imports, bodies, names, data_bytes


def crate_of(name):
    if name.startswith("_ZN"):  # legacy mangling: <len><segment>...
        i = 3
        m = re.match(r"(\d+)", name[i:])
        if m:
            length = int(m.group(1))
            first = name[i + len(m.group(1)):i + len(m.group(1)) + length]
            impl = re.match(r"_?\$LT\$(?:\$RF\$|\*const\$u20\$|\*mut\$u20\$|dyn\$u20\$)?([A-Za-z_]\w*)", first)
            if impl:
                crate = impl.group(1)
                return crate + "<>" if crate in ("alloc", "core") else crate
            return first
    if name.startswith("_R"):  # v0 mangling: the first crate root `C[s<hash>_]<len><name>`
        m = re.search(r"C(?:s[0-9a-zA-Z]*_)?(\d+)([A-Za-z_])", name)
        if m:
            start = m.start(2)
            return name[start:start + int(m.group(1))]
    m = re.match(r"^<?([A-Za-z_]\w*)::", name)
    return m.group(1) if m else "(other)"


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    data = open(path, "rb").read()
    imports, bodies, names, data_bytes = read_module(data)
    if not names:
        sys.exit(f"{path} has no name section: use cargo's output, before wasm-bindgen")
    by_crate = collections.Counter()
    for k, size in enumerate(bodies):
        by_crate[crate_of(names.get(imports + k, ""))] += size
    code = sum(bodies)
    print(f"{path}: {len(data)} bytes, code {code}, data segments {data_bytes}")
    print(f"{'bytes':>9} {'share':>6}  crate")
    for crate, size in by_crate.most_common(top):
        print(f"{size:9d} {100 * size / (code + data_bytes):5.1f}%  {crate}")
    print(f"{data_bytes:9d} {100 * data_bytes / (code + data_bytes):5.1f}%  (data segments)")


if __name__ == "__main__":
    main()
