#!/usr/bin/env bash
# Federation under failure: senders forward items from home server A to mailboxes on server B.
#
#   integration-tests/federation-test.sh crash CYCLES     # kill A, B or both at random, CYCLES times
#   integration-tests/federation-test.sh outage SECONDS   # B down SECONDS under load, A killed halfway
#
# prints one line, `crash-test: cycles=N acked=A delivered=D lost=L stranded=S duplicates=U
# redelivered=R stored-twice=T acked-reported-delivered=O outcomes-failed=F`, and exits non-zero when L,
# S, U, T or F is not 0 or O is not A (see CrashLedger and FederatedHarness). CI runs short versions
# (FederatedHarnessTest).
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-}"
N="${2:-}"
if [[ ! "$MODE" =~ ^(crash|outage)$ || ! "$N" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: integration-tests/federation-test.sh crash CYCLES | outage SECONDS" >&2
  exit 2
fi

echo "federation-test: building..." >&2
(cd "$ROOT" && ./mvnw -q -B -DskipTests package) >&2

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-federation.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "federation-test: $MODE $N; work directory $WORK" >&2
# The server's test jar holds Ports, which the harness shares with the server's own tests.
java -cp "$ROOT/integration-tests/target/test-classes:$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT-tests.jar:$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar" \
  org.ferry.it.crash.FederatedHarness "$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar" "$WORK" "$MODE" "$N"
