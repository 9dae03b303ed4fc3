# Sourced by the adapter benchmarks: a scratch folder beside the data ($OUT, removed on exit) and
# `measure NAME COMMAND...`, which prints one line of wall time, user time and peak RSS for the command.
OUT=$(mktemp -d "$DATA/bench-out.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
measure() {  # name, command...
  local name=$1; shift
  /usr/bin/time -f "$name: %e s wall, %U s user, %M KB peak RSS" "$@" >/dev/null 2>"$OUT/time.txt" || { cat "$OUT/time.txt"; return 1; }
  tail -1 "$OUT/time.txt"
}
