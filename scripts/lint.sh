#!/usr/bin/env bash
# Project contracts checked in `make test`: clang-format clean, and no banned
# functions (use snprintf, bounded copies, strtol with checks, the CSPRNG).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(ls src/lib/*.[ch] src/gmca/*.[ch] src/serve/*.[ch] tests/unit/*.c fuzz/*.c bench/*.c examples/*.c 2>/dev/null || true)
bad=0
for f in $files; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "lint: $f is not clang-format clean (run: make format)"; bad=1
  fi
done
if grep -nE '\b(sprintf|vsprintf|strcpy|strcat|gets|atoi|atol|rand|srand)\s*\(' $files; then
  echo "lint: banned functions above"; bad=1
fi
[ $bad -eq 0 ] && echo "lint: ok"
exit $bad
