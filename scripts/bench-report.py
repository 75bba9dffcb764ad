#!/usr/bin/env python3
"""Turns criterion's estimates from one `cargo bench` run into the ratios BENCHMARKS.md states.

Reads target/criterion/<group>/<bench>/new/estimates.json (median point estimates, ns) and
prints markdown tables: header verification in headers/s against the signature bound
`needed(N) x dalek batch time per signature`, measured in the same run.
"""
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")


def median_ns(*path):
    f = os.path.join(ROOT, *path, "new", "estimates.json")
    with open(f) as fh:
        return json.load(fh)["median"]["point_estimate"]


def needed(n):
    return 2 * n // 3 + 1


def main():
    out = []
    single = median_ns("ed25519", "dalek_verify")
    ours_single = median_ns("ed25519", "headway_verify")
    out.append("| signature primitive | time |")
    out.append("|---|---|")
    out.append(f"| ed25519-dalek `verify_strict`, one signature | {single / 1000:.1f} µs |")
    out.append(f"| headway `verify` (cofactored rule), one signature | {ours_single / 1000:.1f} µs |")
    for k in sorted({needed(n) for n in (4, 21, 100)} | {64 * needed(n) for n in (4, 21, 100)}):
        d = median_ns("ed25519", "dalek_batch", str(k)) / k
        h = median_ns("ed25519", "headway_batch", str(k)) / k
        out.append(f"| batch of {k}: dalek `verify_batch` / headway `verify_batch`, per signature | {d / 1000:.2f} µs / {h / 1000:.2f} µs |")
    out.append("")
    out.append("| validators | path | time per header | headers/s | bound (needed sigs x dalek batch/sig) | bound headers/s | ratio to bound |")
    out.append("|---|---|---|---|---|---|---|")
    for n in (4, 21, 100):
        k = needed(n)
        per_sig = median_ns("ed25519", "dalek_batch", str(k)) / k
        bound = k * per_sig
        for path in ("batch", "single"):
            t = median_ns("header", path, str(n))
            out.append(f"| {n} | one header, {path} | {t / 1000:.1f} µs | {1e9 / t:,.0f} | {bound / 1000:.1f} µs | {1e9 / bound:,.0f} | {bound / t:.0%} |")
        kr = 64 * k
        per_sig_r = median_ns("ed25519", "dalek_batch", str(kr)) / kr
        bound_r = k * per_sig_r
        t = median_ns("range64", "batch", str(n)) / 64
        out.append(f"| {n} | range of 64, batch | {t / 1000:.1f} µs | {1e9 / t:,.0f} | {bound_r / 1000:.1f} µs | {1e9 / bound_r:,.0f} | {bound_r / t:.0%} |")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
