#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 and print its URL; stop it with
# `.ci/postgres.sh stop DATADIR`. Installs Debian's postgresql when it is absent.
set -euo pipefail

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-}" = stop ]; then
  as_postgres "$(pgbin)/pg_ctl" -D "$2" -m fast -w stop >/dev/null
  exit 0
fi

if [ -z "$(pgbin)" ]; then
  echo "installing PostgreSQL from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin=$(pgbin)
port=${PGPORT:-55432}
datadir=$(mktemp -d "${TMPDIR:-/tmp}/repometer-pg.XXXXXX")
[ "$(id -u)" = 0 ] && chown postgres "$datadir"
as_postgres "$bin/initdb" -D "$datadir" -A trust -U postgres -E UTF8 >/dev/null
as_postgres "$bin/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $datadir -c fsync=off" start >/dev/null
as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres repometer_test
echo "$datadir postgresql://postgres@127.0.0.1:$port/repometer_test"
