#!/usr/bin/env bash
# The one test command (README and .ci/run): installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real servers the integration tests start on loopback (Debian packages).
declare -A pkg_of=([mosquitto]=mosquitto)
missing=()
for bin in "${!pkg_of[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("${pkg_of[$bin]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "The tests need these Debian packages: ${missing[*]}" >&2
    echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
# mosquitto from Debian installs to /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin"

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check -q .
exec .venv/bin/python -m pytest -q "$@"
