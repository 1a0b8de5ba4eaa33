#!/usr/bin/env bash
# Issue 17's creation target in one run: qbench fill into ONE queue, then the same fill with every
# item to its own queue (-mckeys unique: N new queues), each on a fresh server (sync: never, the
# default), round-robin over REPS. Prints the items/s, p99 and server RSS of each, and unique/single.
# Usage: bench/scripts/many-queues-fill.sh [n=100000] [reps=1] [size=1024]   (after npm run build; needs go)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}; REPS=${2:-1}; SIZE=${3:-1024}
T=${TMPDIR:-/tmp}; QB=$T/qbench
[ -x "$QB" ] || (cd ../shared/bench/qbench && go build -o "$QB" .)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
out="$work/results.jsonl"
echo "load: $(uptime)" >&2
for r in $(seq "$REPS"); do
  for mode in queue unique; do
    d=$(mktemp -d "$work/s.XXXX"); port=$((24000 + RANDOM % 1000))
    node dist/src/server/main.js -h 127.0.0.1 -p "$port" -q "$d/spool" -L "$d/log" & pid=$!
    for _ in $(seq 100); do grep -q '"listening"' "$d/log" 2>/dev/null && break; sleep 0.1; done
    "$QB" -proto mc -addr "127.0.0.1:$port" -serverpid "$pid" -label "$mode" -mckeys "$mode" -queue mq -size "$SIZE" \
      -workload fill -n "$N" -conns 32 -verify=false 2>/dev/null >> "$out"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$d"
  done
done
echo "load: $(uptime)" >&2
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l))
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1] }
const by = (m) => rows.filter((r) => r.label === m)
for (const m of ["queue", "unique"]) {
  const rs = by(m)
  console.log(`${m.padEnd(7)} ${String(Math.round(med(rs.map((r) => r.items_per_s)))).padStart(7)} items/s  p99 ${Math.round(med(rs.map((r) => r.p99_us)) / 1000)} ms  errors ${rs.reduce((a, r) => a + r.errors, 0)}  server RSS ${Math.round(med(rs.map((r) => r.server_rss_kb)) / 1024)} MiB`)
}
console.log(`unique/single ${(med(by("unique").map((r) => r.items_per_s)) / med(by("queue").map((r) => r.items_per_s))).toFixed(2)}`)
' "$out"
