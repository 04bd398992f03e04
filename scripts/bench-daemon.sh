#!/usr/bin/env bash
# The CLI daemon's timing (docs/BENCHMARKS.md, "Daemon"): median wall time of whole
# `ferry client contacts` and `ferry client send` processes, in-process and through a running
# daemon, in one run (so the ratios compare like with like), with the steps of the fast path
# measured on their own:
#
#   scripts/bench-daemon.sh [N]       (N runs per figure, default 20; SKIP_BUILD=1 to reuse jars)
#
# Uses hyperfine if installed, else python3. Runs a server on loopback and two users in a
# temporary directory, all removed at the end.
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-20}"
case "$N" in
  ''|*[!0-9]*) echo "usage: scripts/bench-daemon.sh [N]" >&2; exit 2 ;;
esac
if [[ -z "${SKIP_BUILD:-}" ]]; then
  echo "bench: building..." >&2
  (cd "$ROOT" && ./mvnw -q -B -DskipTests package) >&2
fi
FERRY="$ROOT/ferry"
TARGET="$ROOT/client-sdk/target"
CLIENT_JAR="$TARGET/ferry-client-sdk-0.1.0-SNAPSHOT.jar"
THIN_JAR="$TARGET/ferry-client-sdk-0.1.0-SNAPSHOT-daemon-cli.jar"
GSON=("$TARGET"/lib/gson-*.jar)
# Short: the daemon's socket path must fit in 107 bytes.
WORK="$(mktemp -d /tmp/ferry-bd.XXXXXX)"
server=""
daemon=""
cleanup() {
  [[ -n "$daemon" ]] && kill "$daemon" 2>/dev/null || true
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  sleep 1
  rm -rf "$WORK"
}
trap cleanup EXIT

java -jar "$ROOT/server/target/ferry-server-0.1.0-SNAPSHOT.jar" --data "$WORK/server" --listen 127.0.0.1:0 \
  > "$WORK/server.out" 2>&1 &
server=$!
for _ in $(seq 1 240); do
  grep -q 'ferry server ready' "$WORK/server.out" 2>/dev/null && break
  sleep 0.25
done
ADDR="$(grep -o 'ready: [^ ]*' "$WORK/server.out" | cut -d' ' -f2)"
A="$WORK/a"
B="$WORK/b"
"$FERRY" client --data "$A" init --server "$ADDR" >/dev/null 2>&1
"$FERRY" client --data "$B" init --server "$ADDR" >/dev/null 2>&1
"$FERRY" client --data "$B" accept "$("$FERRY" client --data "$A" invite --name bob)" --name alice >/dev/null
"$FERRY" client --data "$B" send alice hello >/dev/null 2>&1
"$FERRY" client --data "$A" receive --timeout 1 >/dev/null 2>&1

# Median of N runs of each command given (after 2 warm-up runs), in ms, one line each.
measure() {
  if command -v hyperfine >/dev/null; then
    hyperfine -N -w 2 -r "$N" --export-json "$WORK/h.json" "$@" >/dev/null 2>&1
    python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]: print("%.0f" % (r["median"]*1000))' "$WORK/h.json"
  else
    python3 - "$N" "$@" <<'PY'
import subprocess, sys, time, statistics
n = int(sys.argv[1])
for c in sys.argv[2:]:
    ts = []
    for i in range(n + 2):
        t = time.perf_counter()
        subprocess.run(c, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if i >= 2:
            ts.append((time.perf_counter() - t) * 1000)
    print("%.0f" % statistics.median(ts))
PY
  fi
}

echo "bench: $N runs each, in-process..." >&2
mapfile -t in_process < <(measure "$FERRY client --data $A contacts" "$FERRY client --data $A send bob hi")
"$FERRY" client --data "$A" daemon 2>"$WORK/daemon.err" &
daemon=$!
for _ in $(seq 1 240); do
  [[ -S "$A/daemon.sock" ]] && break
  sleep 0.25
done
"$FERRY" client --data "$A" contacts >/dev/null # makes the fast path's class-data archive
echo "bench: through the daemon..." >&2
THIN="org.ferry.sdk.cli.daemon.DaemonCli --data $A contacts"
FLAGS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -Xshare:auto -Xlog:disable"
mapfile -t through < <(measure "$FERRY client --data $A contacts" "$FERRY client --data $A send bob hi" \
  "java -cp $CLIENT_JAR $THIN" \
  "java -cp ${GSON[0]}:$CLIENT_JAR $THIN" \
  "java $FLAGS -cp ${GSON[0]}:$CLIENT_JAR $THIN" \
  "java $FLAGS -cp ${GSON[0]}:$THIN_JAR $THIN" \
  "java $FLAGS -XX:SharedArchiveFile=$TARGET/daemon-cli.jsa -cp ${GSON[0]}:$THIN_JAR $THIN" \
  "java $FLAGS -XX:SharedArchiveFile=$TARGET/daemon-cli.jsa -version" \
  "bash -c 'source <(sed -n \"/^build_if_stale()/,/^}/p\" $FERRY); ROOT=$ROOT; build() { :; }; build_if_stale $CLIENT_JAR proto datadir client-sdk'")

ratio() { python3 -c "print('%.1f' % ($1 / $2))"; }
cat <<TABLE
| Whole process (median of $N)                         | ms |
|------------------------------------------------------|----|
| \`ferry client contacts\`, in-process                 | ${in_process[0]} |
| \`ferry client contacts\`, through the daemon         | ${through[0]} (in-process / daemon: $(ratio "${in_process[0]}" "${through[0]}")x) |
| \`ferry client send bob hi\`, in-process              | ${in_process[1]} |
| \`ferry client send bob hi\`, through the daemon      | ${through[1]} (in-process / daemon: $(ratio "${in_process[1]}" "${through[1]}")x) |
| Fast path steps (\`contacts\` through the daemon):   |    |
| java -cp client jar (manifest Class-Path: all libs)  | ${through[2]} |
| java -cp gson:client jar                              | ${through[3]} |
| + C1 only, serial GC, no perf data                    | ${through[4]} |
| + the daemon-cli jar instead of the client jar        | ${through[5]} |
| + its class-data archive (what the launcher runs)     | ${through[6]} |
| the same JVM running java -version only               | ${through[7]} |
| the launcher's staleness check (find)                 | ${through[8]} |
TABLE
