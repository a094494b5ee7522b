#!/usr/bin/env bash
# Stop the cluster that scripts/pg-up.sh started (nothing to do when it is not running).
# usage: pg-down.sh BINDIR DATADIR [RUNAS]
set -euo pipefail
BIN=$1; DATA=$2
RUNAS=${3:-$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)}
run() { if [ "$(id -u)" = 0 ]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi; }
[ -f "$DATA/pgdata/PG_VERSION" ] || { echo "no cluster in $DATA"; exit 0; }
if ! run "$BIN/pg_ctl" -D "$DATA/pgdata" status >/dev/null 2>&1; then echo "not running"; exit 0; fi
run "$BIN/pg_ctl" -D "$DATA/pgdata" -m fast -w stop >/dev/null
echo "PostgreSQL in $DATA stopped"
