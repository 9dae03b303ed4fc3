#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL server: Debian's postgresql is installed when missing,
# a cluster is made in a temporary folder (owned by an unprivileged user, listening only on a Unix
# socket in that folder), TLKIT_TEST_POSTGRES_URL points the catalog tests at it (and
# TLKIT_TEST_POSTGRES_PASSWORD_URL with TLKIT_TEST_POSTGRES_PASSWORD at a role that must give a
# password), and the server and folder are removed afterwards, whatever the command's outcome.
# The server also takes TLS connections on 127.0.0.1 (a free port; that role only, with its password),
# with a certificate for 127.0.0.1 and localhost from a throwaway CA: TLKIT_TEST_POSTGRES_TLS_URL,
# TLKIT_TEST_POSTGRES_CA (that CA) and TLKIT_TEST_POSTGRES_OTHER_CA (one that did not sign it).
# A second, socket-only server is the fault tests' to stop and start again (TLKIT_TEST_POSTGRES_FAULT_URL;
# TLKIT_TEST_POSTGRES_FAULT_CTL stop|start runs `pg_ctl stop -m immediate` or starts it again).
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
  "${as[@]}" "$bin/pg_ctl" -D "$dir/fault/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as[@]}" "$bin/initdb" -D "$dir/data" -U tlkit --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# A CA, the server's certificate it signs, and a second CA that signed nothing (TLS tests).
tls="$dir/tls"
mkdir "$tls"
for ca in ca other-ca; do
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tlkit test $ca" \
    -keyout "$tls/$ca.key" -out "$tls/$ca.crt" >/dev/null 2>&1
done
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$tls/san.ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
  -extfile "$tls/san.ext" -out "$tls/server.crt" >/dev/null 2>&1
cp "$tls/server.crt" "$tls/server.key" "$dir/data/"
chmod 600 "$dir/data/server.key"
[ "$(id -u)" -ne 0 ] || chown nobody "$dir/data/server.crt" "$dir/data/server.key"

# Everyone is trusted on the socket except one role that must give its password (authentication
# tests); over TCP only that role, with its password, over TLS.
printf 'local all tlkit_password scram-sha-256\nlocal all all trust\nhostssl all tlkit_password 127.0.0.1/32 scram-sha-256\n' > "$dir/pg_hba.conf"
"${as[@]}" cp "$dir/pg_hba.conf" "$dir/data/pg_hba.conf"
# A free port on the loopback address (another server may take it first: then try the next one).
started=""
for port in $(shuf -i 20000-60000 -n 8); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
  if "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses='127.0.0.1' -c port=$port -c unix_socket_directories='$dir' -c max_connections=200 -c fsync=off -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key" \
    start >/dev/null; then started=$port; break; fi
done
[ -n "$started" ] || { cat "$dir/server.log" >&2; exit 1; }

"$bin/psql" -q "postgresql://tlkit@:$port/postgres?host=$dir" \
  -c "CREATE ROLE tlkit_password LOGIN PASSWORD 'test-only-password'" >/dev/null
# The fault tests' server: its own cluster, on a socket in its own folder (the port only names the
# socket). The control script keeps the server from inheriting the caller's descriptors: a caller that
# learns of the script's exit from a descriptor closing (Foundation's Process does) would otherwise wait
# for the server too.
fault="$dir/fault"
mkdir "$fault"
[ "$(id -u)" -ne 0 ] || chown nobody "$fault"
"${as[@]}" "$bin/initdb" -D "$fault/data" -U tlkit --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb-fault.log" 2>&1 \
  || { cat "$dir/initdb-fault.log" >&2; exit 1; }
cat > "$dir/fault-ctl" <<CTL
#!/usr/bin/env bash
# stop: the server goes down as in a crash (pg_ctl stop -m immediate); start: it comes back.
for fd in /proc/self/fd/*; do
  fd=\${fd##*/}
  case \$fd in 0|1|2|255) ;; *) eval "exec \$fd>&-" 2>/dev/null || true ;; esac
done
case "\$1" in
  stop) ${as[*]} "$bin/pg_ctl" -D "$fault/data" -m immediate stop ;;
  start) ${as[*]} "$bin/pg_ctl" -D "$fault/data" -l "$fault/server.log" -w \\
           -o "-c listen_addresses='' -c port=5432 -c unix_socket_directories='$fault' -c fsync=off" start ;;
  *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac </dev/null >>"$dir/fault-ctl.log" 2>&1
CTL
chmod 755 "$dir/fault-ctl"
"$dir/fault-ctl" start || { cat "$dir/fault-ctl.log" "$fault/server.log" >&2; exit 1; }
export TLKIT_TEST_POSTGRES_FAULT_URL="postgresql://tlkit@:5432/postgres?host=$fault"
export TLKIT_TEST_POSTGRES_FAULT_CTL="$dir/fault-ctl"
export TLKIT_TEST_POSTGRES_URL="postgresql://tlkit@:$port/postgres?host=$dir"
export TLKIT_TEST_POSTGRES_PASSWORD_URL="postgresql://tlkit_password@:$port/postgres?host=$dir"
export TLKIT_TEST_POSTGRES_TLS_URL="postgresql://tlkit_password@127.0.0.1:$port/postgres"
export TLKIT_TEST_POSTGRES_CA="$tls/ca.crt"
export TLKIT_TEST_POSTGRES_OTHER_CA="$tls/other-ca.crt"
export TLKIT_TEST_POSTGRES_PASSWORD=test-only-password
status=0
"$@" || status=$?
exit $status
