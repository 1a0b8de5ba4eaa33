#!/usr/bin/env bash
# Where a server's CPU goes per item under the mixed workload of ../shared/bench/compare.sh (qbench,
# 32 producers + 32 consumers, 1 KiB, one request in flight each): `perf record` of the server's
# threads for a few seconds in the middle of the run, each sample put in one bucket by its stack
# (socket writes, socket reads, the journal's writes, fdatasync, epoll, futex, GC, the rest of
# the kernel, user space), in µs of CPU per item through the queue. Kernel work per request is the
# same for every server (the same syscalls), so what differs is mostly user space.
# Servers: floor (shared/bench/floor.mjs), ours, ours-always, redis-everysec, redis-always;
# round-robin for reps, then the medians.
# Usage: bench/scripts/cpu-split.sh [reps=3] [servers="floor ours ours-always redis-everysec redis-always"]
# Needs: npm run build, perf (Debian linux-perf; run as root or with perf_event_paranoid <= 1),
# go (qbench), redis-server for the Redis rows.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}
SERVERS=${2:-floor ours ours-always redis-everysec redis-always}
DUR=${DUR:-7}   # seconds of load; perf records the middle 4
command -v perf >/dev/null || { echo "cpu-split.sh: no perf (apt-get install linux-perf)" >&2; exit 2; }
. bench/scripts/serve.sh
bench_setup
out="$work/split.jsonl"
for r in $(seq "$REPS"); do
  for s in $SERVERS; do
    d=$(mktemp -d "$work/s.XXXX"); p=$(free_port); proto=mc
    if [ "$s" = floor ]; then node --perf-basic-prof ../shared/bench/floor.mjs "$p" >"$d/log" 2>&1 &
    else NODE_ARGS=--perf-basic-prof start_server "$s" "$p" "$d" || { echo "cpu-split.sh: unknown server $s" >&2; exit 2; }
    fi
    pid=$!
    await_listening "$s" "$pid" "$p" "$d/log"
    "$QB" -proto $proto -addr "127.0.0.1:$p" -serverpid "$pid" -label "$s" -queue cmp -size 1024 \
      -workload mixed -duration "${DUR}s" -conns 64 2>/dev/null >"$d/qb.json" &
    qb=$!
    sleep $(((DUR - 4) / 2))
    perf record -q -o "$d/perf.data" -F 1000 -g -p "$pid" -- sleep 4 >/dev/null 2>&1
    wait "$qb"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    perf script -i "$d/perf.data" 2>/dev/null | python3 -c '
import sys, re, json, collections
label, qb = sys.argv[1], sys.argv[2]
rate = [json.loads(l) for l in open(qb) if "\"mixed-get\"" in l][0]["items_per_s"]
buckets = [("socket write", r"sock_write_iter|tcp_sendmsg"), ("socket read", r"sock_read_iter|tcp_recvmsg"),
           ("fdatasync", r"sys_fdatasync|sys_fsync"), ("journal write", r"ext4_buffered_write_iter|ext4_file_write_iter"),
           ("epoll", r"sys_epoll_wait|sys_epoll_pwait"), ("futex", r"sys_futex"),
           ("GC", r"Scavenge|MarkCompact|Heap::CollectGarbage|Sweeper")]
per_tid, cats = collections.Counter(), []
for sample in sys.stdin.read().split("\n\n"):
    lines = sample.strip().split("\n")
    m = re.match(r"\s*\S+\s+(\d+)", lines[0]) if lines and lines[0].strip() else None
    if not m: continue
    stack = "\n".join(lines[1:])
    cat = next((name for name, pat in buckets if re.search(pat, stack)), None)
    if cat is None: cat = "kernel, other" if "kallsyms" in (lines[1] if len(lines) > 1 else "") else "user space"
    per_tid[m.group(1)] += 1; cats.append((m.group(1), cat))
main = per_tid.most_common(1)[0][0] if per_tid else None
split = collections.Counter(c if t == main else "other threads" for t, c in cats)
us = 1e6 / 1000 / (rate * 4)   # a sample is 1 ms of CPU at -F 1000; 4 s recorded
print(json.dumps({"label": label, "items_per_s": rate, "us": {k: v * us for k, v in split.items()}}))
' "$s" "$d/qb.json" >> "$out"
    tail -1 "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%-15s %6.0f items/s  %5.1f us an item" % (r["label"], r["items_per_s"], sum(r["us"].values())), file=sys.stderr)'
    rm -rf "$d"
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = list(dict.fromkeys(r['label'] for r in rows))
cats = ['user space', 'socket write', 'socket read', 'journal write', 'fdatasync', 'epoll', 'futex', 'GC', 'kernel, other', 'other threads']
print('µs of server CPU an item, qbench mixed (64 connections, 1 KiB), medians of %d' % max(sum(1 for r in rows if r['label'] == l) for l in labels))
print('| | ' + ' | '.join(labels) + ' |')
print('|---|' + '---|' * len(labels))
print('| items/s | ' + ' | '.join('%.1fk' % (st.median(r['items_per_s'] for r in rows if r['label'] == l) / 1000) for l in labels) + ' |')
for c in cats + ['total']:
    cells = []
    for l in labels:
        xs = [sum(r['us'].values()) if c == 'total' else r['us'].get(c, 0) for r in rows if r['label'] == l]
        cells.append('%.1f' % st.median(xs))
    print('| %s | %s |' % (c, ' | '.join(cells)))
PY
