#!/usr/bin/env bash
# Delivery stress (issue 10): 32 senders over 64 mailboxes, each with one connected receiver,
# for SECONDS; then every acknowledged envelope must arrive within 5 s without a reconnect; then
# 10,000-envelope backlogs drain into fresh receivers, again and again for SECONDS, and must never
# pause for more than 3 s.
#
#   integration-tests/stress-test.sh SECONDS      (CI runs DeliveryStressTest, about 6 s)
#
# prints `delivery-stress: ... stranded=N lost=L ...` and one `delivery-drain: ...` line per
# drain; exits 1 if any case failed.
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_ARG="${1:-}"
if [[ ! "$SECONDS_ARG" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: integration-tests/stress-test.sh SECONDS" >&2
  exit 2
fi
echo "stress-test: building..." >&2
(cd "$ROOT" && ./mvnw -q -B -DskipTests package) >&2
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-stress.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
JAR="$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar"
java -Xmx2g -cp "$ROOT/integration-tests/target/test-classes:$JAR" \
  org.ferry.it.stress.DeliveryStress "$JAR" "$WORK" "$SECONDS_ARG"
