#!/usr/bin/env bash
# Store-and-forward benchmarks (docs/BENCHMARKS.md). Each figure is printed next to a baseline
# measured in the same run, as a ratio:
#
#   integration-tests/bench.sh [accept|e2e|restart|idle|all]
#
# restart fills a store with 1,000,000 envelopes (about 1.2 GiB of disk; -Dferry.bench.queued=N
# through BENCH_OPTS to change); idle opens 10,000 receive streams over 1,000 connections.
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHICH="${1:-all}"
case "$WHICH" in
  accept|e2e|restart|idle|all) ;;
  *) echo "usage: integration-tests/bench.sh [accept|e2e|restart|idle|all]" >&2; exit 2 ;;
esac

echo "bench: building..." >&2
(cd "$ROOT" && ./mvnw -q -B -DskipTests package) >&2

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
JAR="$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar"
# shellcheck disable=SC2086
java -Xmx3g ${BENCH_OPTS:-} -cp "$ROOT/integration-tests/target/test-classes:$JAR" \
  org.ferry.it.load.Benchmarks "$JAR" "$WORK" "$WHICH"
