#!/usr/bin/env bash
# Catalog benchmark: stored bytes against raw files and zstd, add/get throughput against zstd, list latency.
#
#   Benchmarks/catalog/run.sh [WORKDIR]        (SCALE, CHECKPOINTS, LORAS, ZSTD19_FILES as in the code below)
#
# Needs a release build of tlkit (swift build -c release --product tlkit; another binary: TLKIT=/path/to/tlkit),
# python3 with numpy, zstd and sqlite3.
# The inputs are a T-LoRA checkpoint series (frozen base tensors shared, trainable ones drifting) and
# unrelated fp16 LoRAs (see generate.py). SCALE=0.125 makes each checkpoint 1/8 of the real 743 MB;
# `zstd -19 --long` is slow (about 3.6 MB/s), so it runs on ZSTD19_FILES files of each set only and the
# ratio it reaches is applied to the rest (the files of a set are alike in size and content).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/tlkit-catalog-bench}
TLKIT=${TLKIT:-$root/.build/release/tlkit}
export SCALE=${SCALE:-0.125} CHECKPOINTS=${CHECKPOINTS:-8} LORAS=${LORAS:-8}
ZSTD19_FILES=${ZSTD19_FILES:-2}
LEVELS=${LEVELS:-"1 3 6 9"}

now() { date +%s.%N; }
mb() { echo "scale=1; $1 / 1000000" | bc; }
rate() { echo "scale=0; $1 / 1000000 / ($2)" | bc; }   # bytes, seconds -> MB/s
size() { stat -c %s "$@" | paste -sd+ | bc; }

mkdir -p "$work"
if [ ! -f "$work/series/ckpt-$CHECKPOINTS.safetensors" ] || [ ! -f "$work/loras/lora-$LORAS.safetensors" ]; then
  echo "generating inputs in $work (SCALE=$SCALE)" >&2
  python3 "$here/generate.py" "$work"
fi
sync

for set in series loras; do
  files=("$work/$set"/*.safetensors)
  raw=$(size "${files[@]}")
  echo "== $set: ${#files[@]} files, $(mb "$raw") MB raw"

  # zstd -19 --long on the first ZSTD19_FILES files, extrapolated by ratio.
  z19raw=0; z19=0; t0=$(now)
  for f in "${files[@]:0:$ZSTD19_FILES}"; do   # ZSTD19_FILES=${#files[@]} measures all of them
    zstd -q -19 --long -T2 -f "$f" -o "$work/tmp.zst"
    z19raw=$((z19raw + $(size "$f"))); z19=$((z19 + $(size "$work/tmp.zst")))
  done
  t19=$(echo "$(now) - $t0" | bc)
  z19total=$(echo "$z19 * $raw / $z19raw" | bc)
  echo "zstd -19 --long -T2: $(echo "scale=1; 100 * $z19 / $z19raw" | bc)% of raw at $(rate "$z19raw" "$t19") MB/s (on $ZSTD19_FILES files); all files ≈ $(mb "$z19total") MB"

  # zstd -3 -T2 and zstd -d on every file.
  rm -rf "$work/z3"; mkdir -p "$work/z3"
  t0=$(now); for f in "${files[@]}"; do zstd -q -3 -T2 -f "$f" -o "$work/z3/$(basename "$f").zst"; done; t3=$(echo "$(now) - $t0" | bc)
  z3=$(size "$work/z3"/*.zst)
  t0=$(now); for f in "$work/z3"/*.zst; do zstd -q -d -f "$f" -o "$work/z3/out"; done; td=$(echo "$(now) - $t0" | bc)
  echo "zstd -3 -T2: $(echo "scale=1; 100 * $z3 / $raw" | bc)% of raw, $(rate "$raw" "$t3") MB/s; zstd -d: $(rate "$raw" "$td") MB/s"

  # tlkit add (fresh catalog), stored size, get.
  cat="$work/$set.sqlite"; rm -f "$cat" "$cat-wal" "$cat-shm"
  t0=$(now); for f in "${files[@]}"; do "$TLKIT" add "$f" --name "$set" --catalog "$cat" >/dev/null 2>&1; done; ta=$(echo "$(now) - $t0" | bc)
  stored=$(size "$cat")
  echo "tlkit add: $(rate "$raw" "$ta") MB/s; catalog file $(mb "$stored") MB = $(echo "scale=1; 100 * $stored / $raw" | bc)% of raw, $(echo "scale=1; 100 * $stored / $z19total" | bc)% of zstd -19 --long"
  t0=$(now)
  for v in $(seq 1 ${#files[@]}); do "$TLKIT" get "$set@$v" -o "$work/out.safetensors" --catalog "$cat" 2>/dev/null; done
  tg=$(echo "$(now) - $t0" | bc)
  cmp -s "$work/out.safetensors" "${files[-1]}" && same=identical || same=DIFFERENT
  echo "tlkit get: $(rate "$raw" "$tg") MB/s (last file $same; includes the fsync before the rename)"
  t0=$(now); for v in $(seq 1 ${#files[@]}); do "$TLKIT" get "$set@$v" -o - --catalog "$cat" 2>/dev/null >/dev/null; done; tg2=$(echo "$(now) - $t0" | bc)
  t0=$(now); for f in "$work/z3"/*.zst; do zstd -q -d -c "$f" >/dev/null; done; td2=$(echo "$(now) - $t0" | bc)
  echo "to /dev/null: tlkit get -o - $(rate "$raw" "$tg2") MB/s, zstd -d -c $(rate "$raw" "$td2") MB/s"
  t0=$(now); "$TLKIT" verify --catalog "$cat" 2>/dev/null; tv=$(echo "$(now) - $t0" | bc)
  echo "tlkit verify: $(rate "$raw" "$tv") MB/s"
done

# zstd level: stored size and add speed of one checkpoint and one LoRA.
echo "== levels (one file each)"
for f in "$work/series/ckpt-1.safetensors" "$work/loras/lora-1.safetensors"; do
  for level in $LEVELS; do
    cat="$work/level.sqlite"; rm -f "$cat" "$cat-wal" "$cat-shm"
    t0=$(now); "$TLKIT" add "$f" --level "$level" --catalog "$cat" >/dev/null 2>&1; t=$(echo "$(now) - $t0" | bc)
    echo "$(basename "$f") level $level: $(echo "scale=1; 100 * $(size "$cat") / $(size "$f")" | bc)% of raw, add $(rate "$(size "$f")" "$t") MB/s"
  done
done

# list latency with 10,000 entries: clone the LoRA catalog's entries in SQL (tensor lists included).
echo "== list with 10,000 entries"
cat="$work/list.sqlite"; cp "$work/loras.sqlite" "$cat"; rm -f "$cat-wal" "$cat-shm"
sqlite3 "$cat" <<'SQL'
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000 - (SELECT count(*) FROM entries))
INSERT INTO entries (name, version, sha256, data_hash, size, stored, added_bytes, tensor_count, kind, format, base,
  method, rank, min_rank, trigger, token, class, steps, note, source, added_at)
SELECT 'lora-' || (n.i % 997), 1000 + n.i, printf('%064x', n.i), e.data_hash, e.size, e.stored, 0, e.tensor_count, e.kind,
  e.format, e.base, CASE n.i % 3 WHEN 0 THEN 'ortho' ELSE 'lora' END, e.rank, e.min_rank, e.trigger, e.token, e.class,
  e.steps, e.note, e.source, e.added_at
FROM n, (SELECT * FROM entries LIMIT 1) e;
INSERT INTO entry_headers SELECT id, (SELECT bytes FROM entry_headers LIMIT 1) FROM entries WHERE id NOT IN (SELECT entry_id FROM entry_headers);
INSERT INTO entry_tensors SELECT e.id, t.ordinal, t.name, t.blob FROM entries e, (SELECT * FROM entry_tensors WHERE entry_id = 1) t
  WHERE e.id NOT IN (SELECT DISTINCT entry_id FROM entry_tensors);
INSERT INTO tags SELECT id, 'tag' || (id % 50) FROM entries;
SQL
echo "entries: $(sqlite3 "$cat" 'SELECT count(*) FROM entries'), catalog $(mb "$(size "$cat")") MB"
for args in "list --json" "list" "list --json --tag tag7" "list --json --name lora-1*" "show lora-5"; do
  best=999
  for _ in 1 2 3 4 5; do
    t0=$(now); "$TLKIT" $args --catalog "$cat" >/dev/null; t=$(echo "$(now) - $t0" | bc)
    best=$(echo "if ($t < $best) $t else $best" | bc)
  done
  echo "tlkit $args: $(echo "$best * 1000 / 1" | bc) ms (best of 5, whole process)"
done
