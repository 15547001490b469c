#!/usr/bin/env bash
# Measures timeout precision, over-limit refusal latency and memory under a bounded soak,
# against a release build. Not part of the test suite. Pass --soak-seconds N (default 180).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build -c release --product fxwatcher
exec .build-venv/bin/python Benchmarks/operations.py --binary .build/release/fxwatcher "$@"
