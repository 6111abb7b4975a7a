#!/usr/bin/env bash
# Soak: runs the release `netsvr` binary under a steady mixed load for SOAK_SECS seconds,
# samples its resident memory, open descriptors, threads and live tokio tasks every
# SOAK_EVERY seconds into a CSV, prints a summary table, and exits 1 when a figure keeps
# growing: the mean of the last third of the samples against the mean of the middle third
# (the first third holds the warm-up), with this slack:
#   RSS +10 % and +5 MiB; fds +2 % and +32; tokio tasks +2 % and +32; threads +2 % and +4.
# Descriptors, tasks and connections are sampled as the floor of five reads 50 ms apart (a
# churn round in flight does not count; a leak raises the floor); the absolute terms cover
# what churn is left and the allocator's arenas settling.
#
# Usage: bash benches/soak.sh            (SOAK_SECS=600 by default)
#        SOAK_SECS=60 bash benches/soak.sh
# Environment: SOAK_SECS (600), SOAK_EVERY (10 s), SOAK_PORT (19700: client port; worker,
# task and admin ports follow it), SOAK_RECEIVERS (1000), SOAK_BROADCASTS (200 per second),
# SOAK_SINK_RATE (31250 per client per second, 8 clients), SOAK_CHURN (100 connections per
# round), SOAK_BUILD (1: build first), OUT (/tmp/netsvr-soak).
#
# The load, at about half of the maxima in BENCHMARKS.md where the binary can take it:
# - events: `netsvr-load sink --sink worker` with 8 clients x SOAK_SINK_RATE = 250 k
#   messages/s through the worker port (max 500 k/s measured), counted, in order, by a
#   business process on the worker port;
# - broadcast: SOAK_RECEIVERS reading connections (`netsvr-load fanout`; each also sends a
#   message a second, to the worker, so that the heartbeat timeout never closes it) and
#   SOAK_BROADCASTS admin-API broadcasts per second to everyone (the admin API over curl is
#   the limit here, far below the 4.5 M deliveries/s of the `chat` example);
# - churn: `netsvr-load connect` rounds of SOAK_CHURN connections, opened and dropped,
#   back to back.
# Server on core 0 and load on core 1 when taskset and two cores are there.
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK_SECS=${SOAK_SECS:-600}
SOAK_EVERY=${SOAK_EVERY:-10}
SOAK_PORT=${SOAK_PORT:-19700}
SOAK_RECEIVERS=${SOAK_RECEIVERS:-1000}
SOAK_BROADCASTS=${SOAK_BROADCASTS:-200}
SOAK_SINK_RATE=${SOAK_SINK_RATE:-31250}
SOAK_CHURN=${SOAK_CHURN:-100}
SOAK_BUILD=${SOAK_BUILD:-1}
OUT=${OUT:-/tmp/netsvr-soak}
mkdir -p "$OUT"
CSV=$OUT/soak.csv
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$SOAK_SECS" -lt $((3 * SOAK_EVERY)) ]; then
  echo "SOAK_SECS ($SOAK_SECS) must hold at least three samples (SOAK_EVERY $SOAK_EVERY)" >&2
  exit 2
fi
if [ "$SOAK_BUILD" = 1 ]; then
  cargo build --release -q -p netsvr-bin -p netsvr-benches --bins
fi
BIN=target/release
CLIENT=127.0.0.1:$SOAK_PORT
WORKER=127.0.0.1:$((SOAK_PORT + 1))
TASK=127.0.0.1:$((SOAK_PORT + 2))
ADMIN=127.0.0.1:$((SOAK_PORT + 5))
SERVER_CPU=() LOAD_CPU=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
fi

cat >"$OUT/soak.toml" <<EOF
[gateway]
listen = "$CLIENT"
[worker]
worker_listen = "$WORKER"
task_listen = "$TASK"
[admin]
listen = "$ADMIN"
[log]
level = "warn"
EOF

PIDS=()
SERVER=
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT

"${SERVER_CPU[@]}" $BIN/netsvr --config "$OUT/soak.toml" >"$OUT/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
  curl -sf "http://$ADMIN/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://$ADMIN/healthz" >/dev/null || { echo "netsvr did not start:" >&2; cat "$OUT/server.log" >&2; exit 1; }

# metric NAME: one unlabelled sample from /metrics (empty when absent).
metric() {
  { curl -s --max-time 5 "http://$ADMIN/metrics" || true; } |
    awk -v n="$1" '$1 == n && !found { print $2; found = 1 }'
}

# totals: the counters the summary turns into rates, summed over their labels.
totals() {
  { curl -s --max-time 5 "http://$ADMIN/metrics" || true; } | awk '
    { name = $1; sub(/\{.*/, "", name); sum[name] += $2 }
    END {
      printf "%.0f %.0f %.0f %.0f\n", sum["netsvr_opens_total"], sum["netsvr_messages_in_total"],
        sum["netsvr_fanout_deliveries_total"], sum["netsvr_drops_total"]
    }'
}

# min A B: the smaller number; an empty A is none yet, an empty B (not sampled) wins.
min() {
  if [ -z "$2" ] || [ -z "$1" ]; then echo "$2"; elif [ "$2" -lt "$1" ]; then echo "$2"; else echo "$1"; fi
}

LOAD_SECS=$((SOAK_SECS + 15))
END=$(($(date +%s) + SOAK_SECS + 10))
"${LOAD_CPU[@]}" $BIN/netsvr-load sink --sink worker --worker "$WORKER" --addr "$CLIENT" \
  --path /netsvr --conns 8 --rate "$SOAK_SINK_RATE" --size 100 --duration "$LOAD_SECS" \
  >"$OUT/sink.json" 2>"$OUT/sink.progress" &
PIDS+=($!)
"${LOAD_CPU[@]}" $BIN/netsvr-load fanout --addr "$CLIENT" --path /netsvr \
  --conns "$SOAK_RECEIVERS" --sources 4 --publishers "$SOAK_RECEIVERS" --rate 1 --size 100 \
  --duration "$LOAD_SECS" >"$OUT/fanout.json" 2>"$OUT/fanout.progress" &
PIDS+=($!)
# Broadcasts: one curl per second sends SOAK_BROADCASTS requests over one connection.
(
  urls=()
  for _ in $(seq "$SOAK_BROADCASTS"); do urls+=("http://$ADMIN/api/v1/broadcast"); done
  while [ "$(date +%s)" -lt "$END" ]; do
    next=$(($(date +%s%N) + 1000000000))
    "${LOAD_CPU[@]}" curl -s -H 'content-type: application/json' \
      -d '{"data":"soak broadcast"}' "${urls[@]}" >/dev/null || true
    left=$(((next - $(date +%s%N)) / 1000000))
    if [ "$left" -gt 0 ]; then sleep "$(printf '0.%03d' "$left")"; fi
  done
) &
PIDS+=($!)
# Churn: rounds of SOAK_CHURN connections opened and dropped.
(
  rounds=0
  while [ "$(date +%s)" -lt "$END" ]; do
    "${LOAD_CPU[@]}" $BIN/netsvr-load connect --addr "$CLIENT" --path /netsvr \
      --conns "$SOAK_CHURN" --sources 4 --concurrency 16 --duration 10 >/dev/null 2>&1 || true
    rounds=$((rounds + 1))
    sleep 0.2
  done
  echo "$rounds" >"$OUT/churn.rounds"
) &
PIDS+=($!)

sleep 5 # connections opened, first traffic through
read -r opens0 in0 fan0 drops0 < <(totals)
echo "t_secs,rss_kib,fds,threads,tokio_tasks,connections" >"$CSV"
start=$(date +%s)
echo "soak: $SOAK_SECS s, sampling every $SOAK_EVERY s into $CSV" >&2
for ((t = 0; t <= SOAK_SECS; t += SOAK_EVERY)); do
  sleep $((start + t - $(date +%s) > 0 ? start + t - $(date +%s) : 0))
  kill -0 "$SERVER" 2>/dev/null || { echo "netsvr exited during the soak" >&2; exit 1; }
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER/status")
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$SERVER/status")
  # Descriptors, tasks and connections: the floor of five reads 50 ms apart, so a churn
  # round in flight at the sampling moment does not count (a leak raises the floor).
  fds= tasks= conns=
  for _ in 1 2 3 4 5; do
    f=$(ls "/proc/$SERVER/fd" | wc -l)
    k=$(metric netsvr_tokio_alive_tasks)
    c=$(metric netsvr_connections)
    fds=$(min "$fds" "$f") tasks=$(min "$tasks" "$k") conns=$(min "$conns" "$c")
    sleep 0.05
  done
  echo "$t,$rss,$fds,$threads,${tasks:-NA},${conns:-NA}" | tee -a "$CSV" >&2
done
read -r opens1 in1 fan1 drops1 < <(totals)
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()

# field FILE KEY: one number from a load run's final JSON line.
field() {
  tail -1 "$1" 2>/dev/null | grep -o "\"$2\":[^,}]*" | cut -d: -f2
}
rate() { awk -v a="$1" -v b="$2" -v s="$SOAK_SECS" 'BEGIN { printf "%.0f", (b - a) / s }'; }
echo
echo "load over the sampled $SOAK_SECS s, from the gateway's counters: $(rate "$in0" "$in1") client" \
  "messages/s in, $(rate "$fan0" "$fan1") broadcast deliveries/s, $(rate "$opens0" "$opens1")" \
  "opens/s (churn), $((drops1 - drops0)) drops"
echo "sink run: $(field "$OUT/sink.json" received_per_sec) events/s counted at the worker," \
  "lost $(field "$OUT/sink.json" lost), order violations $(field "$OUT/sink.json" order_violations);" \
  "receivers connected $(field "$OUT/fanout.json" connected), failures" \
  "$(field "$OUT/fanout.json" failures); churn rounds $(cat "$OUT/churn.rounds" 2>/dev/null || echo '?')"

# The verdict: last third against middle third, per column, with the slack above.
awk -F, '
  NR == 1 { for (i = 2; i <= NF; i++) name[i] = $i; cols = NF; next }
  { n++; for (i = 2; i <= cols; i++) v[n, i] = $i }
  END {
    # column: relative slack, absolute slack (RSS in KiB)
    rel[2] = 0.10; abs[2] = 5120; rel[3] = 0.02; abs[3] = 32
    rel[4] = 0.02; abs[4] = 4;    rel[5] = 0.02; abs[5] = 32
    a = int(n / 3); b = int(2 * n / 3)
    printf "\n%-12s %10s %10s %12s %12s %12s  %s\n", "figure", "start", "end", "middle mean", "last mean", "limit", "verdict"
    fail = 0
    for (i = 2; i <= cols; i++) {
      m = 0; l = 0; na = 0
      for (k = a + 1; k <= b; k++) { if (v[k, i] == "NA") na = 1; m += v[k, i] }
      for (k = b + 1; k <= n; k++) { if (v[k, i] == "NA") na = 1; l += v[k, i] }
      m /= (b - a); l /= (n - b)
      if (na) { printf "%-12s %10s %10s %12s %12s %12s  %s\n", name[i], v[1, i], v[n, i], "-", "-", "-", "not sampled"; if (i in rel) fail = 1; continue }
      if (!(i in rel)) { printf "%-12s %10s %10s %12.1f %12.1f %12s  %s\n", name[i], v[1, i], v[n, i], m, l, "-", "reported"; continue }
      limit = m * (1 + rel[i]) + abs[i]
      verdict = (l <= limit) ? "ok" : "GROWING"
      if (l > limit) fail = 1
      printf "%-12s %10s %10s %12.1f %12.1f %12.1f  %s\n", name[i], v[1, i], v[n, i], m, l, limit, verdict
    }
    printf "\n%s (%d samples; CSV %s)\n", fail ? "SOAK FAILED: a figure keeps growing" : "soak passed", n, FILENAME
    exit fail
  }' "$CSV"
