# Sourced, from the project root, by the bench scripts that start servers themselves
# (cpu-split.sh, floor-always.sh).
# bench_setup: builds qbench into $QB if missing; $work, a temp dir removed on exit, holds
#   always.yml (this server with sync: always).
# start_server NAME PORT DIR: starts ours, ours-always, redis-everysec or redis-always in the
#   background (log in DIR/log; $proto is set to its protocol); returns 1 for any other name.
#   NODE_ARGS are passed to our server's node (e.g. --perf-basic-prof).
# free_port: a free loopback port. await_listening NAME PID PORT LOG: wait up to 10 s for the
#   server to accept connections; if it does not, print its log's tail, stop it, and exit 1.
bench_setup() {
  QB=${TMPDIR:-/tmp}/qbench
  [ -x "$QB" ] || (cd ../shared/bench/qbench && go build -o "$QB" .)
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  printf 'starling:\n  sync: always\n' > "$work/always.yml"
}
start_server() {
  proto=mc
  case $1 in
    ours) NODE_OPTIONS=${NODE_ARGS:-} bin/starling -h 127.0.0.1 -p "$2" -q "$3/spool" >"$3/log" 2>&1 & ;;
    ours-always) NODE_OPTIONS=${NODE_ARGS:-} bin/starling -h 127.0.0.1 -p "$2" -q "$3/spool" -f "$work/always.yml" >"$3/log" 2>&1 & ;;
    redis-everysec | redis-always)
      proto=redis
      redis-server --bind 127.0.0.1 --port "$2" --dir "$3" --save '' --appendonly yes --appendfsync "${1#redis-}" >"$3/log" 2>&1 & ;;
    *) return 1 ;;
  esac
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
await_listening() {
  local _
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "$(basename "$0"): $1 did not start: $(tail -2 "$4")" >&2
  kill "$2" 2>/dev/null
  exit 1
}
