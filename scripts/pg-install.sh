#!/usr/bin/env bash
# PostgreSQL 15 with pgvector 0.8 for the PostgreSQL backend (make pg-up, make serve-postgres,
# the tests' postgres variant), on Debian 12: Debian's own postgresql-15, and pgvector built
# from Debian's *source* package (trixie's pgvector 0.8.x; bookworm has no pgvector) against
# postgresql-server-dev-15 with OPTFLAGS="" (no -march=native: runs on any x86-64; pgvector
# picks its SIMD code at run time). apt checks what it downloads (the signed index).
# Idempotent: exits at once when PG15's initdb is there and vector.control reports 0.8.x.
# Touches no system apt configuration: a private sources file and lists dir under $WORK.
# Needs root (apt). ~50 s on a fresh machine, ~0.01 s afterwards. See docs/postgres.md.
set -euo pipefail
PGV=${PGV:-15}
WORK=${WORK:-/tmp/pgvector-build}
want_major=0.8
ctl=/usr/share/postgresql/$PGV/extension/vector.control
if [ -f "$ctl" ] && grep -q "default_version = '$want_major" "$ctl" \
   && [ -f /usr/lib/postgresql/$PGV/lib/vector.so ]; then
  if [ -x /usr/lib/postgresql/$PGV/bin/initdb ]; then
    echo "pgvector already installed: $(grep default_version "$ctl")"; exit 0
  fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "pg-install: PostgreSQL $PGV with pgvector 0.8 is not installed; run this as root" \
       "(it uses apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
APT_LOCK="-o DPkg::Lock::Timeout=600"
pkgs="postgresql-$PGV postgresql-server-dev-$PGV build-essential dpkg-dev"
# server-dev-15 must be the same version as postgresql-15, so install them together;
# on a fresh machine the package lists may be stale: update once and retry.
apt-get $APT_LOCK install -y --no-install-recommends $pkgs >/dev/null \
  || { apt-get $APT_LOCK update >/dev/null && apt-get $APT_LOCK install -y --no-install-recommends $pkgs >/dev/null; }
mkdir -p "$WORK/lists/partial"
chown _apt "$WORK" 2>/dev/null || true   # lets apt download unsandboxed-warning-free
# Mirror URI copied from the machine's own Debian source list (no host named here).
uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$uri" ] || uri=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
printf 'deb-src [signed-by=%s] %s trixie main\n' "$keyring" "$uri" > "$WORK/src.list"
O=(-o Dir::Etc::SourceList="$WORK/src.list" -o Dir::Etc::SourceParts=/dev/null
   -o Dir::State::Lists="$WORK/lists")
apt-get "${O[@]}" update >/dev/null
cd "$WORK"
rm -rf pgvector-*/
apt-get "${O[@]}" source --download-only pgvector >/dev/null
dpkg-source -x --no-check pgvector_*.dsc >/dev/null 2>&1 || dpkg-source -x pgvector_*.dsc >/dev/null
cd pgvector-*/
# OPTFLAGS="" : no -march=native, so the .so runs on any x86-64 (pgvector's own advice for packagers)
make -j"$(nproc)" PG_CONFIG=/usr/lib/postgresql/$PGV/bin/pg_config OPTFLAGS="" >/dev/null
make install PG_CONFIG=/usr/lib/postgresql/$PGV/bin/pg_config >/dev/null
grep default_version "$ctl"
