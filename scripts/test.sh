#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Swift: installs what it needs (pinned),
# builds, runs the Swift tests, then the end-to-end tests against the real fxwatcher and
# fxmqtt-bridge binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

swift build --product fxwatcher
swift build --product fxmqtt-bridge
swift build --product fximage
swift test
FXWATCHER_BIN="$PWD/.build/debug/fxwatcher" FXMQTT_BRIDGE_BIN="$PWD/.build/debug/fxmqtt-bridge" \
  FXIMAGE_BIN="$PWD/.build/debug/fximage" \
  .build-venv/bin/python -m pytest Tests/e2e -q -p no:cacheprovider
