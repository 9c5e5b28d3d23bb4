#!/usr/bin/env bash
# Install everything threefs needs on a fresh Debian machine (run as root): the Debian packages,
# a virtual environment in .venv, and the package with its pinned dependencies (constraints.txt).
# Usage: scripts/install.sh [EXTRAS]   (default "test"; `make up` uses "fuse,s3,hdfs,fsspec")
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# fuse3/libfuse3-dev/pkg-config: pyfuse3 builds from source against libfuse3 (the FUSE mount);
# rsync: the mount's tests round-trip trees with it. Override with THREEFS_APT_PKGS="...".
APT_PKGS=(${THREEFS_APT_PKGS:-fuse3 libfuse3-dev pkg-config rsync})

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install: missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "install: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "pip>=24" >/dev/null
EXTRAS=${1:-test}
.venv/bin/python -m pip install -q -c constraints.txt -e ".[$EXTRAS]"
echo "install: ok ($(.venv/bin/python --version), threefs[$EXTRAS] in .venv)"
