#!/usr/bin/env bash
# Install the Debian packages the build needs when they are missing (liblzma-dev: the
# binary's launcher decompresses with liblzma). Does nothing when they are present.
set -euo pipefail
missing=()
if ! echo '#include <lzma.h>' | "${CC:-cc}" -E - >/dev/null 2>&1; then
  missing+=(liblzma-dev)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing build packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} with apt-get" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
