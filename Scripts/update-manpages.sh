#!/usr/bin/env bash
# Regenerates Manpages/ from the argument parser (swift-argument-parser's generate-manual plugin) and
# records the command-line interface they describe in Manpages/tlkit.interface.json; a test fails when
# the interface of the built tlkit no longer matches that record (stale man pages).
set -euo pipefail
cd "$(dirname "$0")/.."
DATE=2026-11-29   # fixed, so regenerating unchanged pages changes nothing
swift build --product tlkit
swift package plugin generate-manual --multi-page --date "$DATE" --configuration debug >/dev/null
rm -f Manpages/*.1
cp .build/plugins/GenerateManual/outputs/tlkit/*.1 Manpages/
# The generator's EXIT STATUS is mdoc's generic "0 on success, >0 on error": state tlkit's codes.
for page in Manpages/*.1; do
  case "$page" in
    *.diff.1)   codes="0 when the adapters are equal within the tolerance, 1 when they differ, 2 on error." ;;
    *.verify.1) codes="0 when every entry checked is intact, 1 when one is corrupt, 2 on error." ;;
    *)          codes="0 on success, 1 on a runtime failure (bad file, numeric failure, not found), 2 on a usage error." ;;
  esac
  sed -i "s/^\.Ex -std\$/$codes 130 or 143 after an interruption (SIGINT, SIGTERM)./" "$page"
done
# EXAMPLES: ArgumentParser has no section for them; tlkit prints them at the end of a subcommand's help.
for page in Manpages/tlkit.*.1; do
  name=${page#Manpages/tlkit.}
  name=${name%.1}
  examples=$(.build/debug/tlkit help "$name" | sed -n '/^EXAMPLES:$/,$p' | tail -n +2)
  [ -n "$examples" ] || continue
  {
    printf '\n.Sh EXAMPLES'
    while IFS= read -r line; do
      case "$line" in
        "    "*) printf '\n.Bd -literal -offset indent\n%s\n.Ed' "${line#    }" ;;
        *)       printf '\n.Pp\n%s' "${line#  }" ;;
      esac
    done <<< "$examples"
  } >> "$page"
done
.build/debug/tlkit --experimental-dump-help > Manpages/tlkit.interface.json
ls Manpages
