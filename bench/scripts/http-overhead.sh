#!/usr/bin/env bash
# The memcached mixed workload of ../shared/bench/compare.sh (qbench, 64 conns, 1 KiB, -dur) against
# this server with the HTTP gateway and metrics off and on, round-robin in one run; while "on" runs,
# /metrics is scraped every second (as Prometheus would). Prints the medians and the on/off ratio.
# Usage: bench/scripts/http-overhead.sh [reps=3] [dur=8s]   (after npm run build; needs go)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}; DUR=${2:-8s}
T=${TMPDIR:-/tmp}; QB=$T/qbench
[ -x "$QB" ] || (cd ../shared/bench/qbench && go build -o "$QB" .)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
printf 'starling:\n  http:\n    port: 0\n' > "$work/http.yml"
out="$work/results.jsonl"
for r in $(seq "$REPS"); do
  for mode in off on; do
    d=$(mktemp -d "$work/s.XXXX"); port=$((24000 + RANDOM % 1000))
    args=(-h 127.0.0.1 -p "$port" -q "$d/spool" -L "$d/log"); [ $mode = on ] && args+=(-f "$work/http.yml")
    node dist/src/server/main.js "${args[@]}" & pid=$!
    for _ in $(seq 100); do grep -q '"listening"' "$d/log" 2>/dev/null && break; sleep 0.1; done
    scraper=""
    if [ $mode = on ]; then
      hport=$(grep -o '"httpPort":[0-9]*' "$d/log" | head -1 | cut -d: -f2)
      (while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$hport/metrics"; done) & scraper=$!
    fi
    "$QB" -proto mc -addr "127.0.0.1:$port" -serverpid "$pid" -label "http-$mode" -queue cmp -size 1024 \
      -workload mixed -duration "$DUR" -conns 64 2>/dev/null >> "$out"
    [ -n "$scraper" ] && kill "$scraper"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and json.loads(l).get('phase') == 'mixed-get']
med = {}
for label in ('http-off', 'http-on'):
    xs = [r for r in rows if r['label'] == label]
    bad = sum(r.get('lost', 0) + r.get('duplicated', 0) + r.get('corrupt', 0) + r.get('order_violations', 0) for r in xs)
    med[label] = st.median(r['items_per_s'] for r in xs)
    print('%s: %.1fk items/s (median of %d), p99 %.2f ms, lost/dup/corrupt/order %d' % (label, med[label] / 1000, len(xs), st.median(r['p99_us'] for r in xs) / 1000, bad))
print('mixed, http on / off: %.2f' % (med['http-on'] / med['http-off']))
PY
