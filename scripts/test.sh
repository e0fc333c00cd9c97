#!/usr/bin/env bash
# The one test command: installs every test peer (pinned) and runs every test.
# Usage: bash scripts/test.sh [extra args for cargo nextest / cargo test]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Python test peers (moto, Google's API schema and auth library, slack_sdk, kubernetes-validate, fluent-logger)
# in a local virtualenv, so nothing touches the system Python.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import moto, slack_sdk, googleapiclient, google.auth, kubernetes_validate' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt -c tests/constraints.txt
fi
export SLUICE_TEST_PYTHON="$root/.venv/bin/python"
export PATH="$root/.venv/bin:$PATH"

# The binary is used by end-to-end tests; build it once before tests start in parallel.
cargo build --workspace --bins --quiet

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --profile ci "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
