#!/usr/bin/env bash
# Start a local PostgreSQL (with pgvector installed by scripts/pg-install.sh) on loopback.
# usage: pg-up.sh BINDIR DATADIR PORT [RUNAS]
#   BINDIR: the directory holding initdb/pg_ctl/postgres (e.g. /usr/lib/postgresql/15/bin)
#   DATADIR: the cluster goes in DATADIR/pgdata, its socket in DATADIR/sock, its log in
#            DATADIR/server.log. Run as root, the server runs as RUNAS (default: postgres if
#            that user exists, else nobody) because PostgreSQL refuses to run as root; RUNAS
#            must be able to reach DATADIR (every parent directory searchable by it).
# Idempotent: the cluster is made once; "already running" when it is up. Trust
# authentication on 127.0.0.1 only: for tests and trying the backend, not for production.
# PG_FAST=1 turns fsync off (test clusters: a crash of the machine may lose the data).
set -euo pipefail
BIN=$1; DATA=$2; PORT=$3
RUNAS=${4:-$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)}
run() { if [ "$(id -u)" = 0 ]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi; }
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)
if [ "$(id -u)" = 0 ]; then
  chown "$RUNAS" "$DATA" && chmod 700 "$DATA"
  if ! runuser -u "$RUNAS" -- test -x "$DATA"; then
    echo "pg-up: the user $RUNAS cannot reach $DATA (a parent directory is closed to it," \
         "e.g. a checkout under /root): set PG_DIR to a directory it can reach, e.g." \
         "/tmp/dakera-pg" >&2
    exit 1
  fi
fi
if [ ! -f "$DATA/pgdata/PG_VERSION" ]; then
  run "$BIN/initdb" -D "$DATA/pgdata" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    >"$DATA/initdb.log" 2>&1 || { cat "$DATA/initdb.log"; exit 1; }
fi
run mkdir -p "$DATA/sock"
if run "$BIN/pg_ctl" -D "$DATA/pgdata" status >/dev/null 2>&1; then echo "already running"; exit 0; fi
opts="-c listen_addresses=127.0.0.1 -p $PORT -k $DATA/sock -c max_connections=200"
if [ "${PG_FAST:-0}" = 1 ]; then
  opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
run "$BIN/pg_ctl" -D "$DATA/pgdata" -l "$DATA/server.log" -w -t 60 -o "$opts" start >/dev/null
echo "PostgreSQL is up: postgresql://postgres@127.0.0.1:$PORT/postgres (data in $DATA/pgdata)"
