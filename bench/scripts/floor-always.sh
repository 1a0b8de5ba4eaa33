#!/usr/bin/env bash
# How close one Node event loop gets to Redis `appendfsync always` on compare.sh's mixed load
# (qbench, 32 producers + 32 consumers, 1 KiB, one request in flight each), and whether splitting
# the sockets and the queue over two threads helps. Servers, round-robin for reps:
#   floor-always          bench/bin/floorAlways.ts: the floor + one write and fdatasync a turn
#   floor-always-threads  the same, sockets in a worker thread, queue + journal on the main thread
#   floor, floor-threads  both without the journal
#   ours-always           bin/starling with sync: always
#   redis-always          redis-server --appendonly yes --appendfsync always
# It prints the medians (items/s, p99, server cores over all its threads) and, per repeat, each
# server's rate over redis-always's (the ratios to read on a noisy machine).
# Usage: bench/scripts/floor-always.sh [reps=3] ["servers"]   (DUR=8s; needs npm run build, go,
# redis-server for the Redis row)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}
SERVERS=${2:-floor-always floor-always-threads ours-always redis-always}
DUR=${DUR:-8s}
[ -f dist/bench/bin/floorAlways.js ] || { echo "floor-always.sh: run npm run build first" >&2; exit 2; }
. bench/scripts/serve.sh
bench_setup
out="$work/runs.jsonl"
for r in $(seq "$REPS"); do
  for s in $SERVERS; do
    d=$(mktemp -d "$work/s.XXXX"); p=$(free_port); proto=mc
    case $s in
      floor-always) node dist/bench/bin/floorAlways.js "$p" "$d" >"$d/log" 2>&1 & ;;
      floor-always-threads) node dist/bench/bin/floorAlways.js "$p" "$d" --threads >"$d/log" 2>&1 & ;;
      floor) node dist/bench/bin/floorAlways.js "$p" "$d" --never >"$d/log" 2>&1 & ;;
      floor-threads) node dist/bench/bin/floorAlways.js "$p" "$d" --threads --never >"$d/log" 2>&1 & ;;
      *) start_server "$s" "$p" "$d" || { echo "floor-always.sh: unknown server $s" >&2; exit 2; } ;;
    esac
    pid=$!
    await_listening "$s" "$pid" "$p" "$d/log"
    "$QB" -proto $proto -addr "127.0.0.1:$p" -serverpid "$pid" -label "$s" -tag "$r" -queue cmp -size 1024 \
      -workload mixed -duration "$DUR" -conns 64 2>"$d/err" | grep '"mixed-get"' >> "$out" || true
    grep -E "mixed-get " "$d/err" | sed "s/^ */$s #$r /" | cut -c1-120 >&2 || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$d"
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics as st, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = list(dict.fromkeys(r['label'] for r in rows))
print('| server | mixed items/s | p99 ms | server cores | lost/dup/corrupt/order |')
print('|---|---|---|---|---|')
for label in labels:
    xs = [r for r in rows if r['label'] == label]
    bad = sum(r.get('lost', 0) + r.get('duplicated', 0) + r.get('corrupt', 0) + r.get('order_violations', 0) for r in xs)
    print('| %s | %.1fk | %.2f | %.2f | %d |' % (label, st.median(r['items_per_s'] for r in xs) / 1000,
          st.median(r['p99_us'] for r in xs) / 1000, st.median(r.get('server_cpu', 0) for r in xs), bad))
by_run = collections.defaultdict(dict)
for r in rows: by_run[r.get("tag", 0)][r['label']] = r['items_per_s']
if 'redis-always' in labels:
    print()
    others = [l for l in labels if l != 'redis-always']
    ratios = {l: [run[l] / run['redis-always'] for run in by_run.values() if l in run and 'redis-always' in run] for l in others}
    for l in others:
        print('%-22s / redis-always  per repeat %s  median %.2f' % (l, ' '.join('%.2f' % x for x in ratios[l]), st.median(ratios[l]) if ratios[l] else float('nan')))
PY
