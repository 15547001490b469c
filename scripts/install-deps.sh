#!/usr/bin/env bash
# Installs what building (and, with --test, testing) needs on a fresh Debian machine with
# Swift 6.x already on PATH. Idempotent: what is already there is not installed again.
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh --test   build + test dependencies (Python peers in .build-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build needs (C libraries of the examples go here).
build_apt_packages=(libxml2-dev libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev libcurl4-openssl-dev pkg-config)
# Debian packages the tests need beside the build's.
test_apt_packages=(python3 python3-venv python3-pip nghttp2-client golang-go mosquitto libcurl4 ca-certificates)

with_tests=false
[[ "${1:-}" == "--test" ]] && with_tests=true

command -v swift >/dev/null || { echo "error: swift is not on PATH (Swift 6.1 or newer is needed)" >&2; exit 1; }

missing=()
wanted=("${build_apt_packages[@]}")
$with_tests && wanted+=("${test_apt_packages[@]}")
for package in "${wanted[@]}"; do
  # A tool already on PATH (python3 from pyenv, say) counts as present.
  case "$package" in
    python3) command -v python3 >/dev/null && continue ;;
    python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null && continue ;;
    python3-pip) python3 -m pip --version >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if $with_tests; then
  venv=.build-venv
  requirements=Tests/e2e/requirements.txt
  stamp="$venv/.requirements.sha256"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum "$requirements")" ]]; then
    echo "installing Python test peers from $requirements"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    sha256sum "$requirements" > "$stamp"
  fi
fi
