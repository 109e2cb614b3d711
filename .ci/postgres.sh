#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the sweep tests' cluster path (tests/integration/test_tune.py).
#   export NLPTUNE_TEST_PG_URL=$(bash .ci/postgres.sh start)     # installs the Debian package if needed
#   bash .ci/postgres.sh stop
# Runs as root (CI and the dev machines are root); the server runs as the postgres user, data in a temp folder.
set -euo pipefail
DATA=${NLPTUNE_PG_DATA:-/tmp/nlptune-test-pg}
case "${1:-}" in
start)
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  fi
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if [ -f "$DATA/postmaster.pid" ]; then runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m immediate stop >&2 || true; fi
  rm -rf "$DATA" && mkdir -p "$DATA" && chown postgres "$DATA" && chmod 700 "$DATA"
  runuser -u postgres -- "$BIN/initdb" -D "$DATA" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -o "-h 127.0.0.1 -p $PORT -k $DATA" -l "$DATA/server.log" -w \
    start >/dev/null
  runuser -u postgres -- "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres nlptune_test
  echo "postgresql://postgres@127.0.0.1:$PORT/nlptune_test"
  ;;
stop)
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  if [ -f "$DATA/postmaster.pid" ]; then runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null; fi
  rm -rf "$DATA"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
