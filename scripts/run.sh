#!/usr/bin/env bash
# Builds fxwatcher (release) and runs it: the default handler (echo) on 50051 and 50052, lock
# /tmp/.lock. Settings come from the environment or flags (see README or --help), e.g.
#   scripts/run.sh --handler sleep --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
swift build -c release --product fxwatcher
exec .build/release/fxwatcher "$@"
