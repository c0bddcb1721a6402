#!/usr/bin/env bash
# A throwaway three-node Redis Cluster on loopback, for the redis package's
# TestClusterConformance.
#
#   scripts/redis-cluster.sh start   starts three redis-server processes in
#                                    cluster mode (no replicas) on free ports,
#                                    each in a temp dir, waits for
#                                    cluster_state:ok, and prints
#                                    SESSIOND_TEST_REDIS_CLUSTER=redis://...
#                                    on stdout (progress goes to stderr)
#   scripts/redis-cluster.sh stop [DIR]
#                                    stops the cluster and removes its dir:
#                                    DIR, else the one whose URL is in
#                                    $SESSIOND_TEST_REDIS_CLUSTER, else the
#                                    last one started
#
# Nothing is kept on disk beyond the dir. redis-server comes from Debian's
# package, installed when missing.
set -euo pipefail

base=${TMPDIR:-/tmp}
last=$base/sessiond-redis-cluster.last # the dir of the last cluster started

log() { echo "redis-cluster: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

ensure_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  command -v apt-get >/dev/null || { log "redis-server is missing and there is no apt-get"; exit 1; }
  log "installing redis-server"
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
}

# in_use PORT: something listens on 127.0.0.1:PORT.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports: three ports that are free, with their cluster bus ports
# (port + 10000).
free_ports() {
  local tries p ports
  for tries in $(seq 1 50); do
    ports=()
    for _ in 1 2 3; do
      p=$((20000 + RANDOM % 20000))
      if in_use "$p" || in_use $((p + 10000)) || [[ " ${ports[*]-} " == *" $p "* ]]; then
        continue 2
      fi
      ports+=("$p")
    done
    echo "${ports[@]}"
    return 0
  done
  log "no free ports found"
  return 1
}

# wait_until SECONDS CMD...: retries CMD every 0.2s.
wait_until() {
  local secs=$1; shift
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

cluster_ok() { redis-cli -h 127.0.0.1 -p "$1" cluster info | grep -q '^cluster_state:ok'; }

start() {
  ensure_redis
  local ports dir p
  read -r -a ports <<<"$(free_ports)"
  dir=$(mktemp -d "$base/sessiond-redis-cluster.XXXXXX")
  echo "$dir" >"$last"
  echo "${ports[*]}" >"$dir/ports"
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    redis-server --port "$p" --bind 127.0.0.1 --daemonize yes \
      --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout 5000 \
      --save "" --appendonly no --dir "$dir/$p" \
      --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" >&2
  done
  for p in "${ports[@]}"; do
    if ! wait_until 10 redis-cli -h 127.0.0.1 -p "$p" ping; then
      log "node $p did not start; its log:"; cat "$dir/$p/redis.log" >&2
      stop_dir "$dir"; exit 1
    fi
  done
  log "creating the cluster on ports ${ports[*]}"
  if ! redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >&2; then
    stop_dir "$dir"; exit 1
  fi
  for p in "${ports[@]}"; do
    if ! wait_until 30 cluster_ok "$p"; then
      log "node $p: cluster_state is not ok"; redis-cli -h 127.0.0.1 -p "$p" cluster info >&2 || true
      stop_dir "$dir"; exit 1
    fi
  done
  log "up in $dir"
  echo "SESSIOND_TEST_REDIS_CLUSTER=redis://127.0.0.1:${ports[0]}?addr=127.0.0.1:${ports[1]}&addr=127.0.0.1:${ports[2]}"
}

# stop_dir DIR: stops the nodes of the cluster in DIR, by their pids, and
# removes DIR.
stop_dir() {
  local dir=$1 pidfile pid
  [ -d "$dir" ] || return 0
  for pidfile in "$dir"/*/redis.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || continue
    wait_until 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
  if [ -f "$last" ] && [ "$(cat "$last")" = "$dir" ]; then rm -f "$last"; fi
  log "stopped $dir"
}

stop() {
  local dir=${1:-} url port d
  if [ -z "$dir" ] && [ -n "${SESSIOND_TEST_REDIS_CLUSTER:-}" ]; then
    url=${SESSIOND_TEST_REDIS_CLUSTER#redis://127.0.0.1:}
    port=${url%%\?*}
    for d in "$base"/sessiond-redis-cluster.*/; do
      d=${d%/}
      if [ -f "$d/ports" ] && [ "$(cut -d' ' -f1 "$d/ports")" = "$port" ]; then dir=$d; fi
    done
  fi
  if [ -z "$dir" ] && [ -f "$last" ]; then dir=$(cat "$last"); fi
  if [ -z "$dir" ]; then log "no cluster to stop"; return 0; fi
  case $dir in "$base"/sessiond-redis-cluster.*) ;; *) log "not a cluster dir: $dir"; exit 1 ;; esac
  stop_dir "$dir"
}

case ${1:-} in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: $0 start | stop [DIR]" >&2; exit 2 ;;
esac
