#!/usr/bin/env bash
# Store-and-forward benchmarks (docs/BENCHMARKS.md). Each figure is printed next to a baseline
# measured in the same run, as a ratio:
#
#   integration-tests/bench.sh [accept|e2e|restart|idle|carriers|firstmessage|all]
#
# carriers and firstmessage (docs/BENCHMARKS.md, "Carriers") need obfs4proxy installed.
# restart fills a store with 1,000,000 envelopes (about 1.2 GiB of disk; -Dferry.bench.queued=N
# through BENCH_OPTS to change); idle opens 10,000 receive streams over 1,000 connections.
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHICH="${1:-all}"
case "$WHICH" in
  accept|e2e|restart|idle|carriers|firstmessage|all) ;;
  *) echo "usage: integration-tests/bench.sh [accept|e2e|restart|idle|carriers|firstmessage|all]" >&2; exit 2 ;;
esac

echo "bench: building..." >&2
(cd "$ROOT" && ./mvnw -q -B -DskipTests package) >&2

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
JAR="$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar"
SDK="$ROOT/client-sdk/target/ferry-client-sdk-0.1.0-SNAPSHOT.jar"
CP="$ROOT/integration-tests/target/test-classes:$JAR:$SDK"
run() {
  # shellcheck disable=SC2086
  java -Xmx3g ${BENCH_OPTS:-} -cp "$CP" "$@"
}
case "$WHICH" in
  carriers|firstmessage) run org.ferry.it.load.CarrierBench "$JAR" "$WORK" "$WHICH" ;;
  all)
    run org.ferry.it.load.Benchmarks "$JAR" "$WORK/store" all
    run org.ferry.it.load.CarrierBench "$JAR" "$WORK/carriers" all ;;
  *) run org.ferry.it.load.Benchmarks "$JAR" "$WORK" "$WHICH" ;;
esac
