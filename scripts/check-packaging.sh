#!/usr/bin/env bash
# Checks the release as an operator gets it (issue 17, packaging), after the README's tests:
#   1. builds dist/target/ferry-VERSION.tar.gz (-Prelease) and, where it can make the base image
#      (root, debootstrap, Debian's mirror), the container image dist/target/ferry-image.tar;
#   2. unpacks the archive in a temp dir and runs `ferry demo` there with a PATH of only `java`,
#      coreutils, bash, sed and grep (no Maven, no javac, no git, no repository);
#   3. installs the archive, units and configs into a temp root and has `systemd-analyze verify`
#      and `systemd-analyze security --offline` judge the units there (any warning fails);
#   4. runs the units' ExecStart lines by hand, as an unprivileged user with no capabilities and
#      no new privileges: the server, then a relay in front of it, both stopped with SIGTERM;
#   5. checks the image tar (scripts/check-image.py) and starts its entrypoint in a chroot of its
#      layers, as the image's user, then the relay as packaging/compose.yaml runs it.
#
#   scripts/check-packaging.sh          (FERRY_REQUIRE_TOOLS=1: fail, not skip, the image
#                                        and the unit checks when a tool is missing)
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VERSION="$(sed -n 's:^  <version>\(.*\)</version>$:\1:p' pom.xml | head -1)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-packaging.XXXXXX")"
chmod 755 "$WORK"
PIDS=()
MOUNTS=()
cleanup() {
  local pid m
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  # Never delete through a mount that is still there (/proc, /dev of the image's chroot).
  if ! grep -qF " $WORK/" /proc/self/mounts; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
say() { printf 'check-packaging: %s\n' "$*"; }
die() { printf 'check-packaging: FAILED: %s\n' "$*" >&2; exit 1; }
skip_or_fail() {
  if [[ "${FERRY_REQUIRE_TOOLS:-}" == 1 ]]; then die "$1"; fi
  say "SKIPPED: $1"
}
passed=0
pass() { passed=$((passed + 1)); say "ok: $*"; }

# Waits up to 60 s for a file to be non-empty while PID lives.
await_file() {
  local file="$1" pid="$2" log="$3"
  for _ in $(seq 1 240); do
    [[ -s "$file" ]] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  cat "$log" >&2
  die "$file did not appear (log above)"
}

# Waits (up to 60 s) for a line holding TEXT in LOG, written by process PID; fails if PID dies.
await_line() {
  local text="$1" log="$2" pid="$3"
  for _ in $(seq 1 240); do
    grep -qF "$text" "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  cat "$log" >&2
  die "'$text' did not appear in $log (above)"
}

# Sends SIGTERM and expects the JVM's exit status for it, 143, within 30 s.
stop_expecting_143() {
  local pid="$1" what="$2" rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  [[ $rc -eq 143 ]] || die "$what exited with $rc on SIGTERM, expected 143"
}

# --- 1. Build -------------------------------------------------------------------------------
IMAGE_ARGS=()
if [[ $(id -u) -eq 0 ]] && { command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]]; }; then
  say "making the image's base from Debian packages (packaging/image/base-image.sh)"
  packaging/image/base-image.sh "$WORK/base.tar"
  IMAGE_ARGS=("-Dferry.baseImage=tar://$WORK/base.tar")
else
  skip_or_fail "container image: needs root and debootstrap (apt-get install debootstrap)"
fi
say "building the release (-Prelease)"
rm -f dist/target/ferry-image.tar
./mvnw -B -q -Prelease -pl dist -am package -DskipTests "${IMAGE_ARGS[@]}"
ARCHIVE="dist/target/ferry-$VERSION.tar.gz"
[[ -f "$ARCHIVE" ]] || die "the build made no $ARCHIVE"
pass "built $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"

# --- 2. The archive alone, with only a Java runtime -----------------------------------------
mkdir "$WORK/unpacked"
tar -xzf "$ARCHIVE" -C "$WORK/unpacked"
HOME_DIR="$WORK/unpacked/ferry-$VERSION"
[[ -d "$HOME_DIR" ]] || die "the archive does not unpack into ferry-$VERSION/"
for f in ferry scripts/demo.sh README.md LICENSE docs/operators.md \
    packaging/systemd/ferry-server.service packaging/systemd/ferry-relay.service \
    packaging/config/server.toml packaging/config/relay.toml packaging/compose.yaml \
    packaging/container/nginx.conf; do
  [[ -e "$HOME_DIR/$f" ]] || die "the archive has no $f"
done
[[ -x "$HOME_DIR/ferry" ]] || die "the archive's ferry is not executable"
for jar in ferry-server ferry-relay ferry-client-sdk rocksdbjni libsignal-client; do
  compgen -G "$HOME_DIR/lib/$jar-*.jar" >/dev/null || die "the archive's lib/ has no $jar jar"
done
for f in pom.xml mvnw .mvn server client-sdk; do
  [[ ! -e "$HOME_DIR/$f" ]] || die "the archive holds $f: it should hold no sources or build"
done
pass "the archive holds the launcher, $(ls "$HOME_DIR/lib" | wc -l) jars, docs, units, configs, compose file; no sources"

JAVA_BIN="$(dirname "$(readlink -f "$(command -v java)")")"
mkdir "$WORK/bin"
for f in $(dpkg -L coreutils | grep -E '^/(usr/)?bin/[^/]+$'); do
  [[ -e "$f" ]] && ln -sf "$f" "$WORK/bin/"
done
for t in bash sed grep; do ln -sf "$(command -v "$t")" "$WORK/bin/"; done
# The runtime alone: this machine's Java is a JDK, whose bin/ also has javac and jlink.
mkdir "$WORK/java-bin"
ln -s "$JAVA_BIN/java" "$WORK/java-bin/java"
MINIMAL_PATH="$WORK/bin:$WORK/java-bin"
for t in mvn mvnw git javac; do
  if env -i PATH="$MINIMAL_PATH" bash -c "command -v $t" >/dev/null 2>&1; then
    die "the minimal PATH has $t"
  fi
done
say "running ferry demo from the unpacked archive, PATH=$MINIMAL_PATH"
mkdir "$WORK/home"
if ! (cd "$WORK/home" && env -i HOME="$WORK/home" PATH="$MINIMAL_PATH" TMPDIR="$WORK/home" \
    "$HOME_DIR/ferry" demo > "$WORK/demo.log" 2>&1); then
  cat "$WORK/demo.log" >&2
  die "ferry demo failed from the archive (log above)"
fi
grep -q '^demo: OK' "$WORK/demo.log" || { cat "$WORK/demo.log" >&2; die "the demo did not say OK"; }
pass "ferry demo from the archive with only a Java runtime: $(grep '^demo: OK' "$WORK/demo.log")"

# --- 3. systemd units, judged in a root laid out as the docs install them -------------------
SYSROOT="$WORK/sysroot"
mkdir -p "$SYSROOT/opt" "$SYSROOT/etc/systemd/system" "$SYSROOT/etc/ferry" "$SYSROOT/var/lib"
tar -xzf "$ARCHIVE" -C "$SYSROOT/opt"
mv "$SYSROOT/opt/ferry-$VERSION" "$SYSROOT/opt/ferry"
cp "$SYSROOT"/opt/ferry/packaging/systemd/*.service "$SYSROOT/etc/systemd/system/"
cp "$SYSROOT"/opt/ferry/packaging/config/*.toml "$SYSROOT/etc/ferry/"
if command -v systemd-analyze >/dev/null && [[ -d /usr/lib/systemd/system ]]; then
  # verify resolves the units' dependencies (network-online.target, ...) in the root: give it
  # the system's own units there.
  mkdir -p "$SYSROOT/usr/lib/systemd"
  cp -a /usr/lib/systemd/system "$SYSROOT/usr/lib/systemd/"
  for unit in ferry-server.service ferry-relay.service; do
    out="$(systemd-analyze verify --root="$SYSROOT" "$unit" 2>&1)" || { echo "$out" >&2; die "systemd-analyze verify refused $unit"; }
    [[ -z "$out" ]] || { echo "$out" >&2; die "systemd-analyze verify warned about $unit"; }
    grep -q '^MemoryDenyWriteExecute=' "$SYSROOT/etc/systemd/system/$unit" \
      && die "$unit sets MemoryDenyWriteExecute=, which stops the JVM's JIT"
    exposure="$(systemd-analyze security --offline=true --root="$SYSROOT" "$unit" 2>&1 \
      | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
    [[ -n "$exposure" ]] || die "systemd-analyze security gave no exposure level for $unit"
    awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' \
      || die "$unit: exposure level $exposure, expected at most 2.0 (systemd-analyze security)"
    pass "$unit: systemd-analyze verify clean; exposure level $exposure (security --offline)"
  done
  # verify must notice a missing ExecStart program, or the pass above proves little.
  mv "$SYSROOT/opt/ferry/ferry" "$SYSROOT/opt/ferry/ferry.away"
  if systemd-analyze verify --root="$SYSROOT" ferry-server.service >/dev/null 2>&1; then
    die "systemd-analyze verify accepts a unit whose ExecStart program is missing"
  fi
  mv "$SYSROOT/opt/ferry/ferry.away" "$SYSROOT/opt/ferry/ferry"
else
  skip_or_fail "systemd units: systemd-analyze is missing (apt-get install systemd)"
fi

# --- 4. What the units run, by hand (no systemd as PID 1 here) ------------------------------
# The ExecStart lines with the temp root's paths, as an unprivileged user with no capabilities
# and no new privileges (what DynamicUser=, CapabilityBoundingSet= and NoNewPrivileges= give),
# on loopback: flags override the configs' listen addresses, public host and data directory.
exec_start() {
  sed -n 's/^ExecStart=//p' "$SYSROOT/etc/systemd/system/$1" \
    | sed -e "s:/opt/ferry/:$SYSROOT/opt/ferry/:g" -e "s:/etc/ferry/:$SYSROOT/etc/ferry/:g"
}
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
  AS_SERVICE=(setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs
    --inh-caps=-all --bounding-set=-all env -i PATH=/usr/bin:/bin:"$JAVA_BIN" TMPDIR="$WORK/svc-tmp")
  install -d -m 0700 -o 65534 -g 65534 "$SYSROOT/var/lib/ferry" "$SYSROOT/var/lib/ferry-relay" "$WORK/svc-tmp"
  chmod -R a+rX "$SYSROOT/opt" "$SYSROOT/etc/ferry"
  read -r -a server_cmd <<<"$(exec_start ferry-server.service)"
  "${AS_SERVICE[@]}" "${server_cmd[@]}" --data "$SYSROOT/var/lib/ferry" \
    --listen 127.0.0.1:0 --advertise 127.0.0.1 --metrics-listen 127.0.0.1:0 > "$WORK/server.log" 2>&1 &
  server_pid=$!; PIDS+=("$server_pid")
  await_file "$SYSROOT/var/lib/ferry/server-address" "$server_pid" "$WORK/server.log"
  address="$(cat "$SYSROOT/var/lib/ferry/server-address")"
  read -r -a relay_cmd <<<"$(exec_start ferry-relay.service)"
  "${AS_SERVICE[@]}" "${relay_cmd[@]}" --data "$SYSROOT/var/lib/ferry-relay" \
    --listen 127.0.0.1:0 --public-host 127.0.0.1 --upstream "$address" --metrics-listen 127.0.0.1:0 \
    > "$WORK/relay.log" 2>&1 &
  relay_pid=$!; PIDS+=("$relay_pid")
  await_file "$SYSROOT/var/lib/ferry-relay/bridges" "$relay_pid" "$WORK/relay.log"
  grep -q '^ws wss://127.0.0.1:' "$SYSROOT/var/lib/ferry-relay/bridges" \
    || die "the relay's bridges lack a ws line: $(cat "$SYSROOT/var/lib/ferry-relay/bridges")"
  stop_expecting_143 "$relay_pid" "the relay"
  stop_expecting_143 "$server_pid" "the server"
  grep -q 'ferry server stopped' "$WORK/server.log" || die "the server's log lacks 'ferry server stopped'"
  pass "the units' ExecStart lines ran as nobody without capabilities: server, relay with $(wc -l < "$SYSROOT/var/lib/ferry-relay/bridges") bridge lines, both stopped by SIGTERM (143)"
else
  skip_or_fail "running the units' commands: needs root and setpriv to drop to an unprivileged user"
fi

# --- 5. The container image -----------------------------------------------------------------
IMAGE=dist/target/ferry-image.tar
if [[ -f "$IMAGE" ]]; then
  mkdir "$WORK/rootfs"
  python3 scripts/check-image.py "$IMAGE" --rootfs "$WORK/rootfs"
  pass "image tar: config and layers as expected ($(du -h "$IMAGE" | cut -f1))"
  # A container engine's part, done by hand: /proc and a /dev mounted, the image's env, user and workdir,
  # then its entrypoint and command (listening on loopback instead of 0.0.0.0).
  # The root a mount point (as an engine's overlay is): the server reads its disk's free space.
  mount --bind "$WORK/rootfs" "$WORK/rootfs"; MOUNTS+=("$WORK/rootfs")
  mount -t proc proc "$WORK/rootfs/proc"; MOUNTS=("$WORK/rootfs/proc" "${MOUNTS[@]}")
  mount -t tmpfs -o mode=0755 dev "$WORK/rootfs/dev"; MOUNTS=("$WORK/rootfs/dev" "${MOUNTS[@]}")
  mknod -m 0666 "$WORK/rootfs/dev/null" c 1 3
  mknod -m 0666 "$WORK/rootfs/dev/zero" c 1 5
  mknod -m 0666 "$WORK/rootfs/dev/random" c 1 8
  mknod -m 0666 "$WORK/rootfs/dev/urandom" c 1 9
  chroot --userspec=10001:10001 "$WORK/rootfs" /usr/bin/env -i \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      FERRY_LIB=/opt/ferry/libs /bin/sh -c 'cd /var/lib/ferry && exec "$@"' sh \
      /opt/ferry/ferry server --config /etc/ferry/server.toml --listen 127.0.0.1:0 \
      --metrics-listen 127.0.0.1:0 \
      > "$WORK/image-server.log" 2>&1 &
  image_pid=$!; PIDS+=("$image_pid")
  await_file "$WORK/rootfs/var/lib/ferry/server/server-address" "$image_pid" "$WORK/image-server.log"
  pass "the image's entrypoint started the server as uid 10001 in a chroot of its layers"

  # The relay as packaging/compose.yaml runs it: its entrypoint (compose's $$ is a $), reading
  # the server's volume at /srv/server, with packaging/container/relay.toml (all carriers,
  # obfs4proxy from the image, nginx as fallback). Only its ports move to loopback; the names
  # server and nginx resolve to loopback (no nginx needs to answer for it to start).
  # The compose file parses, has the three services, and every file it mounts exists.
  python3 - packaging/compose.yaml <<'PY' || die "packaging/compose.yaml: see above"
import os, sys
try:
    import yaml
except ImportError:
    print("check-packaging: compose.yaml: no PyYAML here, structure not checked")
    sys.exit(0)
path = sys.argv[1]
doc = yaml.safe_load(open(path))
services = doc["services"]
assert set(services) == {"server", "relay", "nginx"}, sorted(services)
assert services["relay"]["depends_on"]["server"]["condition"] == "service_healthy"
for name, svc in services.items():
    for volume in svc.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            full = os.path.join(os.path.dirname(path), source)
            assert os.path.isfile(full), f"{name} mounts {source}, which does not exist"
        else:
            assert source in doc["volumes"], f"{name} mounts undeclared volume {source}"
PY
  entry="$(sed -n 's/^    entrypoint: //p' packaging/compose.yaml \
    | python3 -c 'import json, sys; e = json.load(sys.stdin); assert e[:2] == ["/bin/sh", "-c"], e; print(e[2].replace("$$", "$"))')"
  [[ "$entry" == *"exec /opt/ferry/ferry relay "* ]] || die "compose.yaml's relay entrypoint does not exec the relay: $entry"
  entry="${entry/exec \/opt\/ferry\/ferry relay /exec /opt/ferry/ferry relay --listen 127.0.0.1:0 --obfs4-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 }"
  cp packaging/container/relay.toml "$WORK/rootfs/etc/ferry/relay.toml"
  echo "127.0.0.1 server nginx" >> "$WORK/rootfs/etc/hosts"
  mkdir -p "$WORK/rootfs/srv/server"
  mount --bind -o ro "$WORK/rootfs/var/lib/ferry" "$WORK/rootfs/srv/server"
  MOUNTS=("$WORK/rootfs/srv/server" "${MOUNTS[@]}")
  chroot --userspec=10001:10001 "$WORK/rootfs" /usr/bin/env -i \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      FERRY_LIB=/opt/ferry/libs FERRY_PUBLIC_HOST=127.0.0.1 /bin/sh -c "$entry" \
      > "$WORK/image-relay.log" 2>&1 &
  relay_pid=$!; PIDS+=("$relay_pid")
  # Its ready line comes after its bridges file: wait for the line itself.
  await_line "ferry relay ready: forwarding to server:7443" "$WORK/image-relay.log" "$relay_pid"
  await_file "$WORK/rootfs/var/lib/ferry/relay/bridges" "$relay_pid" "$WORK/image-relay.log"
  fingerprint="$(cut -d'#' -f2 "$WORK/rootfs/var/lib/ferry/server/server-address")"
  for carrier in ws poll obfs4; do
    grep -q "^$carrier " "$WORK/rootfs/var/lib/ferry/relay/bridges" \
      || die "the compose relay has no $carrier bridge line: $(cat "$WORK/rootfs/var/lib/ferry/relay/bridges")"
  done
  [[ -n "$fingerprint" ]] || die "the image's server wrote no fingerprint"
  pinned="$(chroot --userspec=10001:10001 "$WORK/rootfs" /usr/bin/env -i FERRY_PUBLIC_HOST=127.0.0.1 \
    /bin/sh -c "${entry/exec \/opt\/ferry\/ferry relay /exec echo }")"
  [[ "$pinned" == *"--upstream server:7443#$fingerprint "* ]] \
    || die "compose.yaml's relay would not pin the server's fingerprint: $pinned"
  stop_expecting_143 "$relay_pid" "the image's relay"
  stop_expecting_143 "$image_pid" "the image's server"
  umount "$WORK/rootfs/srv/server" "$WORK/rootfs/dev" "$WORK/rootfs/proc" "$WORK/rootfs"; MOUNTS=()
  pass "compose.yaml's relay entrypoint ran in the image: upstream server:7443 pinned, ws, poll and obfs4 (obfs4proxy) lines"
else
  skip_or_fail "container image: not built (see above)"
fi

echo "check-packaging: $passed passed, 0 failed"
