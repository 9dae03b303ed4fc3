#!/usr/bin/env bash
# Server catalog benchmark: the PostgreSQL catalog against the SQLite one on the same files, in one run.
#
#   Scripts/with-postgres.sh Benchmarks/catalog/server.sh [WORKDIR]
#
# (or give POSTGRES_URL=postgresql://… for a server of your own; the benchmark makes its databases there.)
# Needs a release build of tlkit (TLKIT=/path/to/tlkit for another), python3 with numpy, psql, sqlite3.
#  1. add and get of full-size (743 MB) T-LoRA checkpoints (generate.py, SCALE=1): SQLite file against
#     the server over its Unix socket, alternating per file so both see the same machine;
#  2. push of the 3-checkpoint series from the SQLite catalog to an empty server database: bytes sent
#     against the stored (deduplicated) bytes of the source;
#  3. list --json with 10,000 entries (small distinct adapters, added for real), both backends.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/tlkit-server-bench}
TLKIT=${TLKIT:-$root/.build/release/tlkit}
server=${POSTGRES_URL:-${TLKIT_TEST_POSTGRES_URL:?run through Scripts/with-postgres.sh or give POSTGRES_URL}}
ENTRIES=${ENTRIES:-10000}

now() { date +%s.%N; }
mb() { echo "scale=1; $1 / 1000000" | bc; }
rate() { echo "scale=0; $1 / 1000000 / ($2)" | bc; }   # bytes, seconds -> MB/s
size() { stat -c %s "$@" | paste -sd+ | bc; }
tables() {   # each table's size on the server (rows, indexes and TOAST), per entry
  psql -qAt "$1" -F ' ' -c "SELECT c.relname, pg_total_relation_size(c.oid), (SELECT count(*) FROM entries) FROM pg_class c
    WHERE c.relname IN ('blobs', 'blob_chunks', 'entries', 'entry_headers', 'entry_tensors', 'tags') ORDER BY 2 DESC" |
    while read -r name bytes entries; do printf '  %-14s %9.1f MB  (%s KB per entry)\n' "$name" "$(echo "scale=1; $bytes / 1000000" | bc)" "$(echo "scale=1; $bytes / 1000 / $entries" | bc)"; done
}
database() {   # a fresh database on the server; prints its URL
  local name="tlkit_bench_$1_$$"
  PGOPTIONS="-c client_min_messages=warning" psql -q "$server" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
  case "$server" in *\?*) echo "$server&dbname=$name" ;; *) echo "$server?dbname=$name" ;; esac
}

mkdir -p "$work"
if [ ! -f "$work/series/ckpt-3.safetensors" ]; then
  echo "generating 3 full-size checkpoints in $work" >&2
  SCALE=${SCALE:-1} CHECKPOINTS=3 LORAS=1 python3 "$here/generate.py" "$work"
fi
files=("$work"/series/ckpt-{1,2,3}.safetensors)
raw=$(size "${files[@]}")
echo "== add / get: 3 checkpoints, $(mb "$raw") MB"
sqlite="$work/series.sqlite"; rm -f "$sqlite" "$sqlite-wal" "$sqlite-shm"
pg=$(database series)
declare -A took=()
time_it() { local t0; t0=$(now); "$@" >/dev/null 2>&1; echo "$(now) - $t0" | bc; }
for f in "${files[@]}"; do
  sync
  took[add_sqlite]=$(echo "${took[add_sqlite]:-0} + $(time_it "$TLKIT" add "$f" --name series --catalog "$sqlite")" | bc)
  sync
  took[add_pg]=$(echo "${took[add_pg]:-0} + $(time_it "$TLKIT" add "$f" --name series --catalog "$pg")" | bc)
done
for v in 1 2 3; do
  took[get_sqlite]=$(echo "${took[get_sqlite]:-0} + $(time_it "$TLKIT" get "series@$v" -o "$work/out.safetensors" --catalog "$sqlite")" | bc)
  cmp -s "$work/out.safetensors" "${files[$((v - 1))]}" || echo "SQLite get of series@$v DIFFERS"
  took[get_pg]=$(echo "${took[get_pg]:-0} + $(time_it "$TLKIT" get "series@$v" -o "$work/out.safetensors" --catalog "$pg")" | bc)
  cmp -s "$work/out.safetensors" "${files[$((v - 1))]}" || echo "PostgreSQL get of series@$v DIFFERS"
done
for op in add get; do
  s=${took[${op}_sqlite]} p=${took[${op}_pg]}
  echo "$op: SQLite $(rate "$raw" "$s") MB/s, PostgreSQL $(rate "$raw" "$p") MB/s = $(echo "scale=2; $s / $p" | bc)x SQLite's speed"
done

echo "server tables after the series:"; tables "$pg"

echo "== push of the series from SQLite to an empty server database"
stored=$(sqlite3 "$sqlite" "SELECT (SELECT sum(stored_size) FROM blobs) + (SELECT sum(length(bytes)) FROM entry_headers)")
empty=$(database push)
t0=$(now)
report=$("$TLKIT" push series --all-versions --to "$empty" --json --catalog "$sqlite" 2>/dev/null)
t=$(echo "$(now) - $t0" | bc)
sent=$(echo "$report" | python3 -c 'import json, sys; print(json.load(sys.stdin)["stored_bytes_sent"])')
echo "stored in the source: $(mb "$stored") MB (tensors + headers); push sent $(mb "$sent") MB of tensors in $(printf %.1f "$t") s"

echo "== list --json with $ENTRIES entries"
if [ ! -f "$work/small/$ENTRIES.done" ]; then
  rm -rf "$work/small"; mkdir -p "$work/small"
  ENTRIES=$ENTRIES python3 - "$work/small" <<'PY'
import json, os, struct, sys
import numpy as np
folder, n = sys.argv[1], int(os.environ["ENTRIES"])
rng = np.random.default_rng(7)
for i in range(n):
    down, up = rng.standard_normal((4, 64), dtype=np.float32), rng.standard_normal((64, 4), dtype=np.float32)
    header = {"__metadata__": {"ss_network_module": "networks.lora"},
              "lora_unet_a.lora_down.weight": {"dtype": "F32", "shape": [4, 64], "data_offsets": [0, 1024]},
              "lora_unet_a.lora_up.weight": {"dtype": "F32", "shape": [64, 4], "data_offsets": [1024, 2048]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(f"{folder}/s{i:05d}.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + down.tobytes() + up.tobytes())
PY
  touch "$work/small/$ENTRIES.done"
fi
small="$work/small.sqlite"; rm -f "$small" "$small-wal" "$small-shm"
pgsmall=$(database small)
for catalog in "$small" "$pgsmall"; do
  t0=$(now)
  find "$work/small" -name '*.safetensors' -print0 | sort -z | xargs -0 -n 500 "$TLKIT" add --catalog "$catalog" >/dev/null 2>&1
  t=$(echo "$(now) - $t0" | bc)
  label=SQLite; [ "$catalog" = "$small" ] || label=PostgreSQL
  count=$("$TLKIT" list --json --catalog "$catalog" | wc -l)
  best=999
  for _ in 1 2 3 4 5; do
    t1=$(now); "$TLKIT" list --json --catalog "$catalog" >/dev/null; d=$(echo "$(now) - $t1" | bc)
    best=$(echo "if ($d < $best) $d else $best" | bc)
  done
  echo "$label: $count entries added in $(printf %.0f "$t") s; list --json $(echo "$best * 1000 / 1" | bc) ms (best of 5, whole process)"
done
echo "server tables with $ENTRIES small entries:"; tables "$pgsmall"
