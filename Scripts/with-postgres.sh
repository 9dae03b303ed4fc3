#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL server: Debian's postgresql is installed when missing,
# a cluster is made in a temporary folder (owned by an unprivileged user, listening only on a Unix
# socket in that folder), TLKIT_TEST_POSTGRES_URL points the catalog tests at it (and
# TLKIT_TEST_POSTGRES_PASSWORD_URL with TLKIT_TEST_POSTGRES_PASSWORD at a role that must give a
# password), and the server and folder are removed afterwards, whatever the command's outcome.
#   Scripts/with-postgres.sh swift test ...        (or: Scripts/with-postgres.sh Scripts/test.sh)
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGUMENT...]" >&2; exit 2; }

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

dir=$(mktemp -d /tmp/tlkit-postgres.XXXXXX)
# The server refuses to run as root: as root, the cluster belongs to 'nobody'.
as=()
if [ "$(id -u)" -eq 0 ]; then
  chown nobody "$dir"
  as=(runuser -u nobody --)
fi
chmod 755 "$dir"
cleanup() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as[@]}" "$bin/initdb" -D "$dir/data" -U tlkit --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# Everyone is trusted on the socket except one role that must give its password (authentication tests).
printf 'local all tlkit_password scram-sha-256\nlocal all all trust\n' > "$dir/pg_hba.conf"
"${as[@]}" cp "$dir/pg_hba.conf" "$dir/data/pg_hba.conf"
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=200 -c fsync=off" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }

"$bin/psql" -q "postgresql://tlkit@/postgres?host=$dir" \
  -c "CREATE ROLE tlkit_password LOGIN PASSWORD 'test-only-password'" >/dev/null
export TLKIT_TEST_POSTGRES_URL="postgresql://tlkit@/postgres?host=$dir"
export TLKIT_TEST_POSTGRES_PASSWORD_URL="postgresql://tlkit_password@/postgres?host=$dir"
export TLKIT_TEST_POSTGRES_PASSWORD=test-only-password
status=0
"$@" || status=$?
exit $status
