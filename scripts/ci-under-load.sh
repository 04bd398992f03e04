#!/usr/bin/env bash
# CI reliability on a busy machine: runs .ci/run in a fresh clone of this repository's HEAD
# while a second full `./mvnw verify` loops in another clone as CPU load, RUNS times in a row,
# and prints one line per run:
#
#   scripts/ci-under-load.sh [RUNS]      (default 3; each run takes 9-12 minutes on 2 cores)
#
# Exits non-zero if any run failed. Logs stay in the work directory it names.
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-3}"
if [[ ! "$RUNS" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/ci-under-load.sh [RUNS]" >&2
  exit 2
fi
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-ci-load.XXXXXX")"
echo "ci-under-load: work directory $WORK" >&2
git clone -q "$ROOT" "$WORK/load"
failed=0
for n in $(seq 1 "$RUNS"); do
  git clone -q "$ROOT" "$WORK/run-$n"
  setsid bash -c "cd '$WORK/load' && while true; do ./mvnw -B -q verify > '$WORK/load.log' 2>&1; done" &
  load=$!
  start=$(date +%s)
  (cd "$WORK/run-$n" && .ci/run > "$WORK/run-$n.log" 2>&1); rc=$?
  end=$(date +%s)
  kill -- -"$load" 2>/dev/null
  sleep 2
  pkill -9 -f "$WORK/load/" 2>/dev/null
  echo "ci-under-load: run $n: exit $rc in $((end - start)) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  (( rc == 0 )) || failed=1
done
exit "$failed"
