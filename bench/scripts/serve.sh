# Sourced by the bench scripts that start a server themselves (cpu-split.sh, floor-always.sh).
# free_port: a free loopback port. await_listening NAME PID PORT LOG: wait up to 10 s for the
# server to accept connections; if it does not, print its log's tail, stop it, and exit 1.
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
