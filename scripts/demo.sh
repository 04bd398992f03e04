#!/usr/bin/env bash
# Ferry demo: a home server and users Alice and Bob, a relay for Carol, and a second server for
# Dan (federation), in a temporary directory.
# Narrates each step with the exact command it runs; exits 0 only if every message arrived.
set -euo pipefail

ROOT="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
FERRY="$ROOT/ferry"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")"
SERVER_PID=""
SERVER2_PID=""
RELAY_PID=""

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "== $*"; }
# Prints a command as one would type it: arguments with spaces or quotes in single quotes.
show() {
  local out="" arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:#=@%+,-]+$ ]]; then
      out+=" $arg"
    else
      out+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '   $%s\n' "$out"
}

cleanup() {
  if [[ -n "$RELAY_PID" ]] && kill -0 "$RELAY_PID" 2>/dev/null; then
    kill -TERM "$RELAY_PID" 2>/dev/null || true
    wait "$RELAY_PID" 2>/dev/null || true
  fi
  local pid
  for pid in "$SERVER_PID" "$SERVER2_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts server NAME (its data in $WORK/NAME) on ADDRESS, its pid in STARTED_PID; returns 1
# (printing nothing) if it does not come up.
try_start_server() {
  local name="$1"
  rm -f "$WORK/$name/server-address"
  "$FERRY" server --data "$WORK/$name" --listen "$2" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  STARTED_PID=$!
  for _ in $(seq 1 120); do
    if [[ -s "$WORK/$name/server-address" ]]; then
      sed 's/^/   /' "$WORK/$name.out"
      return 0
    fi
    if ! kill -0 "$STARTED_PID" 2>/dev/null; then
      break
    fi
    sleep 0.25
  done
  return 1
}

# Starts server NAME on ADDRESS, or (without one) on a free port between 20000 and 29999: below
# the kernel's ephemeral range (from 32768), so that no outgoing connection can take the port
# while the server is down for its restart, which must come back on the same port.
start_named_server() {
  local name="$1"
  if [[ -n "${2:-}" ]]; then
    try_start_server "$name" "$2" && return 0
  else
    for _ in 1 2 3 4 5 6 7 8; do
      try_start_server "$name" "127.0.0.1:$((20000 + RANDOM % 10000))" && return 0
      grep -q 'Address already in use' "$WORK/$name.err" || break
    done
  fi
  echo "demo: the server did not start:" >&2
  cat "$WORK/$name.err" >&2
  exit 1
}

start_server() {
  start_named_server server "${1:-}"
  SERVER_PID="$STARTED_PID"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}

# Runs `ferry client` as user $1, narrating the command. Its stdout goes to $OUT (and is
# printed, indented); its stderr is shown as is, less the store-key note.
client() {
  local who="$1"; shift
  show ferry client --data "$who" "$@"
  OUT="$("$FERRY" client --data "$WORK/$who" "$@" 2> >(grep -v '^note:' >&2))"
  if [[ -n "$OUT" ]]; then
    sed 's/^/   /' <<<"$OUT"
  fi
}

expect_line() {
  local got="$1" want="$2"
  if ! grep -qxF "$want" <<<"$got"; then
    echo "demo: FAILED: expected the line '$want', got:" >&2
    echo "$got" >&2
    exit 1
  fi
}

step "1. Start a home server (it makes its key on first start; clients pin its fingerprint)"
show ferry server --data server --listen "127.0.0.1:<a free port>"
start_server
ADDRESS="$(cat "$WORK/server/server-address")"
# Restarts must come back on the same port: clients know the server by its address.
PORT="${ADDRESS%%#*}"; PORT="${PORT##*:}"

step "2. Alice and Bob each create an identity on that server"
client alice init --server "$ADDRESS"
client bob init --server "$ADDRESS"

step "3. Alice invites Bob: a one-time URI, small enough for a QR code"
client alice invite --name bob
URI="$OUT"
echo "   (${#URI} characters)"

step "4. Bob accepts it: he fetches Alice's encrypted bundle once and starts a PQXDH session"
client bob accept "$URI" --name alice

step "5. Bob sends Alice a message; it is acknowledged only once the server holds it durably"
client bob send alice "hi Alice, it's Bob"

step "6. The server restarts before Alice comes online: nothing is lost"
stop_server
echo "   (server stopped)"
start_server "127.0.0.1:$PORT"

step "7. Alice receives (the handshake and the message)"
client alice receive --timeout 2
expect_line "$OUT" "bob: hi Alice, it's Bob"

step "8. Alice answers; Bob receives"
client alice send bob "hello Bob, good to hear from you"
client bob receive --timeout 2
expect_line "$OUT" "alice: hello Bob, good to hear from you"

step "9. Both compare safety numbers (in person, or over a call they trust)"
client alice contacts; A="$OUT"
client bob contacts; B="$OUT"
if [[ "$(cut -f3 <<<"$A")" != "$(cut -f3 <<<"$B")" ]]; then
  echo "demo: FAILED: the safety numbers differ" >&2
  exit 1
fi

step "10. The server's data never held the messages in the clear"
if grep -rqF "hi Alice" "$WORK/server"; then
  echo "demo: FAILED: plaintext found in the server's data directory" >&2
  exit 1
fi
echo "   grep -r 'hi Alice' server/  ->  nothing"

step "11. Carol's network blocks the server's address. Someone runs a relay in front of the server"
show ferry relay --data relay --listen 127.0.0.1:0 --upstream "$ADDRESS" --carriers ws,poll
"$FERRY" relay --data "$WORK/relay" --listen 127.0.0.1:0 --upstream "$ADDRESS" --carriers ws,poll \
  >"$WORK/relay.out" 2>"$WORK/relay.err" &
RELAY_PID=$!
for _ in $(seq 1 120); do
  grep -q "ferry relay ready" "$WORK/relay.out" 2>/dev/null && break
  kill -0 "$RELAY_PID" 2>/dev/null || break
  sleep 0.25
done
if ! grep -q "ferry relay ready" "$WORK/relay.out"; then
  echo "demo: the relay did not start:" >&2
  cat "$WORK/relay.err" >&2
  exit 1
fi
sed 's/^/   /' "$WORK/relay.out"
WS_LINE="$(sed -n 1p "$WORK/relay/bridges")"
# Port 1 is closed here: it stands for the server's address as Carol's censor blocks it.
BLOCKED="127.0.0.1:1#${ADDRESS#*#}"

step "12. Carol starts with the blocked address and the relay's bridge line; her client finds the way"
client carol init --server "$BLOCKED" --bridge "$WS_LINE"
client carol status
if ! grep -q "connected via ws" <<<"$OUT"; then
  echo "demo: FAILED: Carol is not connected over the WebSocket bridge" >&2
  exit 1
fi

step "13. Carol invites Alice: they are on the same server, which Alice reaches directly and Carol through the relay"
client carol invite --name alice
URI="$OUT"
client alice accept "$URI" --name carol
client alice send carol "hello Carol, through the relay"
client carol receive --timeout 2
expect_line "$OUT" "alice: hello Carol, through the relay"

step "14. Another organisation runs a second server; Dan's home is there"
show ferry server --data server2 --listen "127.0.0.1:<a free port>"
start_named_server server2
SERVER2_PID="$STARTED_PID"
ADDRESS2="$(cat "$WORK/server2/server-address")"
client dan init --server "$ADDRESS2"

step "15. Alice invites Dan: Dan's server fetches the invitation from Alice's for him"
echo "   (each client talks only to its own home server; the servers talk to each other, so"
echo "    Alice's server never sees Dan's address, and Dan's never sees Alice's)"
client alice invite --name dan
URI="$OUT"
client dan accept "$URI" --name alice

step "16. Dan writes to Alice: his server holds the message durably, then hands it to Alice's"
client dan send alice "hi Alice, Dan here, from the other server"
client alice receive --timeout 5
expect_line "$OUT" "dan: hi Alice, Dan here, from the other server"
client alice send dan "hello Dan, across two servers"

step "17. Alice's send is held by her server until Dan's has it; her client hears the outcome"
client alice sends
if ! grep -q "^forwarding	dan	" <<<"$OUT"; then
  echo "demo: FAILED: Alice's send to Dan is not listed as held by her server" >&2
  exit 1
fi
client dan receive --timeout 5
expect_line "$OUT" "alice: hello Dan, across two servers"
client alice receive --timeout 2
client alice sends
if [[ -n "$OUT" ]]; then
  echo "demo: FAILED: Alice's send to Dan is still pending or failed" >&2
  exit 1
fi
echo "   (nothing pending or failed: Dan's server has the message)"

echo
bold "demo: OK: all messages arrived, end to end encrypted, across a server restart, through a relay and between two servers"
