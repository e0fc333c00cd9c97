#!/usr/bin/env bash
# The sluice demo, from any directory: resets examples/demo/out, builds sluice (release, reused when up to
# date), runs examples/demo/fluent.conf until it has read the logs, then prints what went where.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rm -rf "$here/out"
echo "demo: building sluice (release; the first build takes a few minutes)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin sluice
bin="${CARGO_TARGET_DIR:-$root/target}/release/sluice"
"$bin" -c "$here/fluent.conf" -q
python3 "$here/summary.py" "$here/logs" "$here/out"
