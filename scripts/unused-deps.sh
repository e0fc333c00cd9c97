#!/usr/bin/env bash
# Fails when a crate declares a dependency its code never names: the check `cargo machete` makes (a path
# `name::`, `use name;`, `name!`, `name as`, `extern crate name` in src/, tests/, benches/, examples/ or
# build.rs), without installing anything. Seconds. Usage: bash scripts/unused-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

unused=0
for manifest in crates/*/Cargo.toml; do
  dir=$(dirname "$manifest")
  sources=()
  for d in src tests benches examples build.rs; do
    [ -e "$dir/$d" ] && sources+=("$dir/$d")
  done
  # Dependency names in [dependencies], [dev-dependencies] and [build-dependencies] (one per line).
  deps=$(awk '/^\[/ { on = ($0 ~ /^\[(dev-|build-)?dependencies\]$/); next }
              on && /^[A-Za-z0-9_-]+[ \t]*[.=]/ { sub(/[ \t]*[.=].*/, ""); print }' "$manifest")
  for dep in $deps; do
    name=${dep//-/_}
    if ! grep -rqE "(^|[^A-Za-z0-9_])$name(::|[[:space:]]*;|!|[[:space:]]+as[[:space:]])|extern crate $name" \
      --include='*.rs' "${sources[@]}" 2>/dev/null; then
      echo "unused-deps.sh: $manifest declares $dep, which its code never uses"
      unused=1
    fi
  done
done
exit $unused
