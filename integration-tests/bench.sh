#!/usr/bin/env bash
# Store-and-forward benchmarks (docs/BENCHMARKS.md). Each figure is printed next to a baseline
# measured in the same run, as a ratio:
#
#   integration-tests/bench.sh [accept|e2e|restart|idle|carriers|firstmessage|all]
#   integration-tests/bench.sh delivery|compare|online [N]
#   integration-tests/bench.sh hostile [STREAMS]
#   integration-tests/bench.sh sdk [N]
#   integration-tests/bench.sh federation [N] [BACKLOG]
#
# delivery (issue 10, "the online path"; N envelopes per round, default 10000): online delivery,
# offline store and drain, paced latency, send rate with 1,000 idle receive streams, accept at 64
# senders, against raw RocksDB synced puts. compare: the same, interleaved round by round with
# Prosody's own load run (PROSODY_RUN, default $ROOT/../shared/peers/prosody/run.sh), as a table.
# online: the online rounds only (with BENCH_OPTS=-Dferry.bench.jfr=FILE, a JFR recording of the
# server over them; -Dferry.bench.rounds=R for more rounds).
# hostile (issue 19, "memory bounded whatever clients do"): a server with a 256 MiB heap, STREAMS
# (default 400) receive streams that never read on mailboxes holding 2 MiB each, 1,000 idle TCP
# and 100 idle TLS connections; an honest pair's p99 latency before and during, heap and RSS.
# sdk (issue 12, "an always-on SDK"; N messages, default 2000): blocking send vs sendAsync through
# the outbox, and the receiver's background loop, against a server process.
# federation (issue 11; N items per round, default 20000; BACKLOG default 100000): two server
# processes; delivery to mailboxes on B straight (baseline) vs forwarded through home server A;
# latency of the extra hop at a fixed load; a backlog queued at A while B is down, drained when it
# comes back, with live items meanwhile.
# carriers and firstmessage (docs/BENCHMARKS.md, "Carriers") need obfs4proxy installed.
# restart fills a store with 1,000,000 envelopes (about 1.2 GiB of disk; -Dferry.bench.queued=N
# through BENCH_OPTS to change); idle opens 10,000 receive streams over 1,000 connections.
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHICH="${1:-all}"
N="${2:-10000}"
case "$WHICH" in
  accept|e2e|restart|idle|carriers|firstmessage|all|delivery|online) ;;
  hostile) N="${2:-400}" ;;
  sdk) N="${2:-2000}" ;;
  federation) N="${2:-20000}"; BACKLOG="${3:-100000}" ;;
  compare)
    PROSODY_RUN="${PROSODY_RUN:-$ROOT/../shared/peers/prosody/run.sh}"
    if [ ! -f "$PROSODY_RUN" ]; then
      echo "bench: compare needs Prosody's load script, not found at $PROSODY_RUN (set PROSODY_RUN)" >&2
      exit 2
    fi
    PROSODY_RUN="$(cd "$(dirname "$PROSODY_RUN")" && pwd)/$(basename "$PROSODY_RUN")" ;;
  *) echo "usage: integration-tests/bench.sh [accept|e2e|restart|idle|carriers|firstmessage|all] | delivery|compare|online [N] | hostile [STREAMS] | sdk [N] | federation [N] [BACKLOG]" >&2; exit 2 ;;
esac
case "$N" in
  ''|*[!0-9]*) echo "bench: N must be a number of envelopes, got '$N'" >&2; exit 2 ;;
esac

echo "bench: building..." >&2
(cd "$ROOT" && ./mvnw -q -B -DskipTests package) >&2

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
JAR="$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar"
SDK="$ROOT/client-sdk/target/ferry-client-sdk-0.1.0-SNAPSHOT.jar"
# The server's test jar: test helpers shared with the server's own tests (Ports, MutableClock).
CP="$ROOT/integration-tests/target/test-classes:$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT-tests.jar:$JAR:$SDK"
run() {
  # shellcheck disable=SC2086
  java -Xmx3g ${BENCH_OPTS:-} -cp "$CP" "$@"
}
case "$WHICH" in
  carriers|firstmessage) run org.ferry.it.load.CarrierBench "$JAR" "$WORK" "$WHICH" ;;
  delivery|online) run org.ferry.it.load.DeliveryBench "$JAR" "$WORK" "$WHICH" "$N" ;;
  compare) run org.ferry.it.load.DeliveryBench "$JAR" "$WORK" compare "$N" "$PROSODY_RUN" ;;
  hostile) run org.ferry.it.load.HostileReceivers "$WORK" 256 "$N" 1000 ;;
  sdk) run org.ferry.it.load.SdkBench "$JAR" "$WORK" "$N" ;;
  federation) run org.ferry.it.load.FederationBench "$JAR" "$WORK" "$N" "$BACKLOG" ;;
  all)
    run org.ferry.it.load.Benchmarks "$JAR" "$WORK/store" all
    run org.ferry.it.load.CarrierBench "$JAR" "$WORK/carriers" all ;;
  *) run org.ferry.it.load.Benchmarks "$JAR" "$WORK" "$WHICH" ;;
esac
