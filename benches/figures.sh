#!/usr/bin/env bash
# Runs every figure of BENCHMARKS.md once: server on core 0, load on core 1, release builds.
# Usage: bash benches/figures.sh [FIGURE...]   (default: all; see the case names below)
# Prints one line per figure; the full JSON of each run goes to $OUT (default /tmp/netsvr-figures).
# The sink figures need Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/netsvr-figures}
mkdir -p "$OUT"
ulimit -n 20000

cargo build --release -q --examples -p netsvr-examples
cargo build --release -q -p netsvr-benches --bins -p netsvr-bin
BIN=target/release
LOAD="taskset -c 1 $BIN/netsvr-load"
PORT=19000

# start_server NAME CMD...: runs CMD on core 0 in the background; sets SERVER.
start_server() {
  local name=$1
  shift
  taskset -c 0 "$@" >"$OUT/$name.server.log" 2>&1 &
  SERVER=$!
  sleep 1
}

# start_example NAME SERVER MODE: our example MODE (`chat` or `echo`) when SERVER is not
# `naive`, else the naive server in MODE.
start_example() {
  if [ "$2" = naive ]; then
    start_server "$1" $BIN/naive-server --mode "$3" --listen 127.0.0.1:$PORT
  else
    start_server "$1" $BIN/examples/"$3" --listen 127.0.0.1:$PORT
  fi
}

stop_server() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  sleep 1
}

# field JSON_FILE KEY: one number from the final JSON line.
field() {
  tail -1 "$1" | grep -o "\"$2\":[^,}]*" | cut -d: -f2
}

# cpu_ticks PID: user + system clock ticks the process has used so far.
cpu_ticks() {
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# run NAME MODE ARGS...: one load run against 127.0.0.1:$PORT.
run() {
  local name=$1
  shift
  $LOAD "$@" >"$OUT/$name.json" 2>"$OUT/$name.progress"
}

# sink_config FILE SINK: a netsvr config with one sink (worker ports, Redis or AMQP).
sink_config() {
  local file=$1 sink=$2
  {
    echo "[gateway]"
    echo "listen = \"127.0.0.1:$PORT\""
    echo "[admin]"
    echo "listen = \"127.0.0.1:$((PORT + 90))\""
    case $sink in
      worker)
        echo "[worker]"
        echo "worker_listen = \"127.0.0.1:$((PORT + 61))\""
        echo "task_listen = \"127.0.0.1:$((PORT + 62))\""
        ;;
      redis)
        printf '[worker]\nenabled = false\n[redis]\nurl = "redis://127.0.0.1:6379"\n'
        printf '[redis.open]\nkey = ""\n[redis.message]\nkey = "netsvr-figures:message"\n'
        printf '[redis.close]\nkey = ""\n'
        ;;
      amqp)
        printf '[worker]\nenabled = false\n[amqp]\nexchange = "netsvr-figures"\n'
        printf 'open_routing_key = ""\nclose_routing_key = ""\n'
        printf 'message_routing_key = "netsvr.message"\n'
        ;;
    esac
  } >"$file"
}

figure() {
  PORT=$((PORT + 100))
  case $1 in
    idle)
      for server in chat naive; do
        start_example idle-$server $server chat
        run idle-$server idle --addr 127.0.0.1:$PORT --conns 10000 --sources 8 --pid "$SERVER" --duration 5
        echo "idle RSS/conn ($server): $(field "$OUT/idle-$server.json" bytes_per_conn) B"
        stop_server
      done
      ;;
    broadcast)
      for server in chat naive; do
        for conns in 1000 10000; do
          start_example bc-$server-$conns $server chat
          run bc-$server-$conns fanout --addr 127.0.0.1:$PORT --conns $conns --sources 8 \
            --publishers 4 --window 4 --size 100 --duration 5
          echo "broadcast $conns ($server): $(field "$OUT/bc-$server-$conns.json" deliveries_per_sec)/s"
          stop_server
          PORT=$((PORT + 1))
        done
      done
      ;;
    deflate)
      # The same 1 KiB JSON fan-out: plain clients, permessage-deflate clients, and deflate
      # clients that inflate each shared frame once per load thread (--inflate-shared: the
      # load tool's one core then measures the gateway, not 1,000 clients' zlib). The
      # gateway's CPU is its share of core 0 over the load tool's whole run.
      for clients in plain deflate shared; do
        case $clients in
          plain) flag= ;;
          deflate) flag=--deflate ;;
          shared) flag="--deflate --inflate-shared" ;;
        esac
        start_example df-$clients chat chat
        local ticks0 t0 ticks1 t1
        ticks0=$(cpu_ticks "$SERVER")
        t0=$(date +%s.%N)
        run df-$clients fanout --addr 127.0.0.1:$PORT --conns 1000 --sources 8 --publishers 4 \
          --window 4 --size 1024 --payload json --duration 5 $flag
        ticks1=$(cpu_ticks "$SERVER")
        t1=$(date +%s.%N)
        local f=$OUT/df-$clients.json
        echo "fan-out 1k x 1 KiB JSON ($clients clients): $(field "$f" deliveries_per_sec)/s," \
          "p50 $(field "$f" p50_ms) ms, p99 $(field "$f" p99_ms) ms," \
          "wire/payload $(field "$f" wire_per_payload)," \
          "gateway CPU $(echo "($ticks1 - $ticks0) / $(getconf CLK_TCK) / ($t1 - $t0) * 100" | bc -l | cut -c1-5)%"
        stop_server
        PORT=$((PORT + 1))
      done
      ;;
    echo)
      for server in echo naive; do
        start_example echo-$server $server echo
        run echo-$server echo --addr 127.0.0.1:$PORT --conns 100 --window 1 --size 512 --duration 5 --warmup 1
        echo "echo ($server): $(field "$OUT/echo-$server.json" round_trips_per_sec)/s"
        stop_server
      done
      ;;
    accepts)
      for server in chat naive; do
        start_example acc-$server $server chat
        run acc-$server connect --addr 127.0.0.1:$PORT --conns 10000 --sources 16 --concurrency 128 --duration 5
        echo "accepts ($server): $(field "$OUT/acc-$server.json" accepts_per_sec)/s"
        stop_server
        sleep 20 # let the client ports leave TIME_WAIT
      done
      ;;
    latency)
      for server in chat naive; do
        start_example lat-$server $server chat
        run lat-$server fanout --addr 127.0.0.1:$PORT --conns 1000 --publishers 1 --rate 100 \
          --size 100 --duration 11 --warmup 1
        echo "p99 at 1k x 100 msg/s ($server): $(field "$OUT/lat-$server.json" p99_ms) ms" \
          "(p50 $(field "$OUT/lat-$server.json" p50_ms), send lag max $(field "$OUT/lat-$server.json" send_lag_max_ms))"
        stop_server
      done
      ;;
    storm)
      start_server storm $BIN/examples/chat --listen 127.0.0.1:$PORT
      run storm storm --addr 127.0.0.1:$PORT --conns 5000 --sources 8 --concurrency 128 --duration 5
      echo "storm 5k: worst re-accept $(field "$OUT/storm.json" worst_ms) ms, failed $(field "$OUT/storm.json" failed)"
      stop_server
      ;;
    sink-worker)
      sink_config "$OUT/worker.toml" worker
      start_server sink-worker $BIN/netsvr --config "$OUT/worker.toml"
      run sink-worker sink --sink worker --worker 127.0.0.1:$((PORT + 61)) --addr 127.0.0.1:$PORT \
        --path /netsvr --conns 8 --rate 62500 --size 100 --duration 5
      echo "worker sink at 500k/s offered: $(field "$OUT/sink-worker.json" received_per_sec)/s," \
        "lost $(field "$OUT/sink-worker.json" lost), order violations $(field "$OUT/sink-worker.json" order_violations)"
      stop_server
      ;;
    sink-redis)
      redis-cli del netsvr-figures:message >/dev/null
      sink_config "$OUT/redis.toml" redis
      start_server sink-redis $BIN/netsvr --config "$OUT/redis.toml"
      run sink-redis sink --sink redis --redis 127.0.0.1:6379 --key netsvr-figures:message \
        --addr 127.0.0.1:$PORT --path /netsvr --conns 8 --rate 32000 --size 100 --duration 5
      echo "redis sink at 256k/s offered: $(field "$OUT/sink-redis.json" received_per_sec)/s," \
        "lost $(field "$OUT/sink-redis.json" lost), order violations $(field "$OUT/sink-redis.json" order_violations)"
      stop_server
      redis-cli del netsvr-figures:message >/dev/null
      ;;
    sink-amqp)
      sink_config "$OUT/amqp.toml" amqp
      start_server sink-amqp $BIN/netsvr --config "$OUT/amqp.toml"
      run sink-amqp sink --sink amqp --queue netsvr-figures.q --exchange netsvr-figures \
        --routing-key netsvr.message --addr 127.0.0.1:$PORT --path /netsvr --conns 8 --rate 6250 \
        --size 100 --duration 5 --ack auto
      echo "amqp sink at 50k/s offered: $(field "$OUT/sink-amqp.json" received_per_sec)/s," \
        "lost $(field "$OUT/sink-amqp.json" lost), order violations $(field "$OUT/sink-amqp.json" order_violations)"
      stop_server
      ;;
    *)
      echo "unknown figure $1" >&2
      exit 2
      ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- idle broadcast deflate echo latency storm sink-worker sink-redis sink-amqp accepts
fi
for f in "$@"; do
  figure "$f"
done
