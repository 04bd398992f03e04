#!/usr/bin/env bash
# Crash harness: runs a real Ferry server under concurrent load, kills it with SIGKILL at random
# moments CYCLES times, restarts it, drains every mailbox and checks the harness's own ledger:
#
#   integration-tests/crash-test.sh CYCLES [--unsafe-ack-before-write]
#
# prints one line, `crash-test: cycles=N acked=A delivered=D lost=L stranded=S duplicates=U
# redelivered=R`, and exits non-zero when L, S or U is not 0: L acknowledged but never delivered,
# S delivered only to fresh receivers after a final restart (the connected ones never got it), U
# delivered again after the server confirmed its ack; R (allowed, at-least-once) delivered again
# before any confirmation. --unsafe-ack-before-write starts the server in a test-only mode that
# acknowledges sends before writing them; the harness must then report lost > 0.
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CYCLES="${1:-}"
if [[ ! "$CYCLES" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: integration-tests/crash-test.sh CYCLES [--unsafe-ack-before-write]" >&2
  exit 2
fi
shift
if [[ $# -gt 0 && "$1" != "--unsafe-ack-before-write" ]]; then
  echo "crash-test: unknown option '$1'" >&2
  exit 2
fi

echo "crash-test: building..." >&2
(cd "$ROOT" && ./mvnw -q -B -DskipTests package) >&2

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-crash.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "crash-test: $CYCLES cycles; work directory $WORK" >&2
java -cp "$ROOT/integration-tests/target/test-classes:$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar" \
  org.ferry.it.crash.CrashHarness "$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar" "$WORK" "$CYCLES" "$@"
