#!/usr/bin/env bash
# Print where the local PostgreSQL cluster lives: the given directory (the checkout's .pgdata)
# when the server's user (postgres, else nobody) can reach it, else a directory under /tmp
# named after it: run as root from a checkout under /root (mode 700), PostgreSQL, which
# refuses to run as root, could not open a data dir inside the checkout.
# usage: pg-dir.sh WANTED
set -euo pipefail
WANTED=$1
RUNAS=$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)
parent=$(dirname "$WANTED")
if [ "$(id -u)" != 0 ] || runuser -u "$RUNAS" -- test -x "$parent" 2>/dev/null; then
  echo "$WANTED"
else
  echo "/tmp/dakera-pgdata-$(printf %s "$WANTED" | cksum | cut -d' ' -f1)"
fi
