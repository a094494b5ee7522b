#!/usr/bin/env bash
# Install a Chromium for the browser tests of the memory browser (tests/test_web_browser.py)
# when none is there: Debian's chromium with apt (no recommends: 26 packages, ~116 MiB),
# or EPEL's chromium with dnf (the AlmaLinux release builds). Does nothing when a Chromium
# is present (DAKERA_CHROMIUM, chromium or chromium-browser on the PATH). Playwright drives
# it (`playwright install` is never run: nothing else is downloaded).
set -euo pipefail
if [ -n "${DAKERA_CHROMIUM:-}" ] && [ -x "${DAKERA_CHROMIUM}" ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
  pkgs=(chromium fonts-liberation)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' \
      || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && exit 0
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]} with apt-get (the browser tests drive Chromium)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
  /usr/bin/chromium --version >&2
  exit 0
fi
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if command -v dnf >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing chromium from EPEL with dnf (the browser tests drive Chromium)" >&2
  $sudo dnf install -y -q epel-release
  $sudo dnf install -y -q chromium liberation-fonts
  exit 0
fi
echo "the browser tests need Chromium: install it with your package manager, or set" \
     "DAKERA_CHROMIUM to a Chromium or Chrome binary" >&2
exit 1
