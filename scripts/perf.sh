#!/usr/bin/env bash
# The performance measurement of the README, in one run on this machine:
#
#   scripts/perf.sh [sqlite|postgres|redis] [--sessions N] [--duration SECONDS]
#                   [--rounds N] [--database URL] [--session-store URL]
#
#   (a) baseline: a no-op Go net/http server (internal/perf/noop) answering
#       a body of the same size as GET /v1/session's, under wrk -t1 -c32;
#       and (a') the same no-op sending sessiond's response headers with
#       sessiond's server timeouts (--like-sessiond), which tells what the
#       security headers and slow-client timeouts cost apart from the
#       who-am-I handler (the targets are against (a));
#   (b) who-am-I: wrk -t1 -c32 against GET /v1/session with bearer tokens
#       of 1,000 sessions, each request a token picked at random (the same
#       Lua script drives the no-op, so the generator's work is the same);
#       with --rounds N, (a) and (b) alternate N times and the round of the
#       median ratio is reported (all rounds are listed), which steadies
#       the ratio on a machine whose other load comes and goes;
#   (c) login storm: 32 connections logging in as fast as they can
#       (`sessiond-load --scenario login`, argon2id at the default cost)
#       while wrk measures who-am-I as in (b);
#   (d) with --sessions N (SQLite only, e.g. 1000000): N sessions written
#       into a fresh database file by internal/perf/seed before the server
#       starts, then who-am-I as in (b), over 1,000 of the N picked at
#       random (the same traffic as (b), against a store N/1,000 times as
#       large), beside (b)'s figure at 1,000; (d') the same with tokens
#       picked at random among all N, the worst case for the cache of
#       validated sessions (--cache-size, 100,000 by default: most lookups
#       read SQLite); and the server's resident memory (VmRSS) at 1,000
#       and at N sessions.
#
# sqlite (default) uses a fresh database file; postgres a fresh schema in
# the local database "test" (search_path); redis keeps sessions in the local
# Redis under a fresh key prefix and accounts in a fresh SQLite file. The
# local PostgreSQL and Redis come from scripts/services.sh; --database and
# --session-store name others. Everything listens on 127.0.0.1 only, every
# load is bounded in time, and everything started here is stopped at the
# end. Installs wrk with apt-get when it is missing. The summary is printed
# and kept, with the raw outputs, under artifacts/perf/.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=sqlite
big=0
dur=10
rounds=1
conns=32
db_url=
store_url=
usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
if [ $# -gt 0 ] && [[ $1 != -* ]]; then backend=$1; shift; fi
while [ $# -gt 0 ]; do
  case $1 in
    --sessions) big=$2; shift 2 ;;
    --duration) dur=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --database) db_url=$2; shift 2 ;;
    --session-store) store_url=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "perf: unknown argument $1" >&2; usage ;;
  esac
done
case $backend in sqlite|postgres|redis) ;; *) echo "perf: backend must be sqlite, postgres or redis" >&2; usage ;; esac
[[ $big =~ ^[0-9]+$ && $dur =~ ^[0-9]+$ && $dur -ge 1 && $rounds =~ ^[0-9]+$ && $rounds -ge 1 ]] ||
  { echo "perf: --sessions, --duration and --rounds take whole numbers" >&2; exit 2; }

say() { printf '\n== %s\n' "$*" >&2; }

# ---- tools ----
if ! command -v wrk >/dev/null; then
  say "installing wrk"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

work=$(mktemp -d /tmp/sessiond-perf.XXXXXX)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=artifacts/perf/$backend-$stamp
mkdir -p "$out"
pids=()
pg_schema=
redis_prefix=
rss_big=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$pg_schema" ]; then psql -q -h 127.0.0.1 -d test -c "DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null 2>&1 || true; fi
  if [ -n "$redis_prefix" ]; then
    redis-cli -h 127.0.0.1 --scan --pattern "$redis_prefix*" | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "building"
go build -o "$work/sessiond" ./cmd/sessiond
go build -o "$work/sessiond-load" ./cmd/sessiond-load
go build -o "$work/noop" ./internal/perf/noop
go build -o "$work/seed" ./internal/perf/seed

# ---- backends ----
database="sqlite://$work/perf.db"
session_store=
case $backend in
  postgres)
    if [ -z "$db_url" ]; then
      ./scripts/services.sh >&2
      pg_schema=sessiond_perf_$$
      db_url="postgres://$(id -un)@127.0.0.1:5432/test?sslmode=disable&search_path=$pg_schema"
    fi
    database=$db_url ;;
  redis)
    if [ -z "$store_url" ]; then
      ./scripts/services.sh >&2
      redis_prefix="sessiond-perf-$$:"
      store_url="redis://127.0.0.1:6379/0?prefix=$redis_prefix"
    fi
    session_store=$store_url ;;
esac
if [ "$big" -gt 0 ] && [ "$backend" != sqlite ]; then
  echo "perf: --sessions is for sqlite only; the scale test is skipped" >&2
  big=0
fi

# ---- helpers ----
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

wait_http() { # wait_http URL: up to 30s
  for _ in $(seq 1 150); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "perf: $1 did not come up" >&2; return 1
}

export SESSIOND_ADMIN_KEY
SESSIOND_ADMIN_KEY=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')

sessiond_pid=
start_sessiond() { # start_sessiond DATABASE_URL: sets pub, adm, sessiond_pid
  pub=$(free_port); adm=$(free_port)
  while [ "$adm" = "$pub" ]; do adm=$(free_port); done
  local args=(serve --database "$1" --listen "127.0.0.1:$pub" --admin-listen "127.0.0.1:$adm"
    --log-level warn --notify-outbox "$work/outbox")
  [ -n "$session_store" ] && args+=(--session-store "$session_store")
  "$work/sessiond" "${args[@]}" >>"$out/sessiond.log" 2>&1 &
  sessiond_pid=$!
  pids+=("$sessiond_pid")
  wait_http "http://127.0.0.1:$pub/healthz"
}
stop_sessiond() {
  kill "$sessiond_pid" 2>/dev/null || true
  wait "$sessiond_pid" 2>/dev/null || true
}
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# One Lua script for every wrk run: GET /v1/session with the bearer token
# of a session picked at random from the file given after "--".
cat >"$work/whoami.lua" <<'LUA'
local tokens = {}
local host
init = function(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do tokens[#tokens + 1] = line end
  f:close()
  math.randomseed(os.time())
  host = wrk.host .. ":" .. wrk.port
end
request = function()
  return "GET /v1/session HTTP/1.1\r\nHost: " .. host ..
    "\r\nAuthorization: Bearer " .. tokens[math.random(#tokens)] .. "\r\n\r\n"
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("PERF requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
LUA

# run_wrk NAME URL TOKENS: wrk -t1 -c32 for $dur seconds; prints the PERF line.
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime of process $1
# run_wrk NAME URL TOKENS [PID]: one wrk run; with PID, the line also gives
# the server's CPU time per request in microseconds (cpu_us), from /proc.
run_wrk() {
  local t0= t1 line
  [ -n "${4:-}" ] && t0=$(cpu_ticks "$4")
  timeout $((dur + 60)) wrk -t1 -c"$conns" -d"${dur}s" --timeout 5s -s "$work/whoami.lua" "$2" -- "$3" >"$out/wrk-$1.txt" 2>&1
  line=$(grep '^PERF ' "$out/wrk-$1.txt") || { cat "$out/wrk-$1.txt" >&2; return 1; }
  if [ -n "$t0" ]; then
    t1=$(cpu_ticks "$4")
    line="$line cpu_us=$(awk -v a="$t0" -v b="$t1" -v hz="$clk_tck" -v n="$(field "$line" requests)" 'BEGIN { printf "%.2f", (n > 0 ? (b - a) * 1e6 / hz / n : 0) }')"
  fi
  echo "$line"
}
field() { sed -n "s/.*[ ]$2=\([^ ]*\).*/\1/p" <<<"$1"; }

# ---- (b, setup) sessiond with 1,000 sessions ----
say "starting sessiond ($backend)"
start_sessiond "$database"
"$work/sessiond-load" --target "http://127.0.0.1:$pub" --admin "http://127.0.0.1:$adm" \
  --setup-only --users 32 --sessions 1000 --tokens-out "$work/tokens-1k.txt" 2>&1 | sed 's/^/  /' >&2
first=$(head -n1 "$work/tokens-1k.txt")
body_bytes=$(curl -fsS -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $first" "http://127.0.0.1:$pub/v1/session")

# ---- (a) the no-op baseline and (b) who-am-I, alternating ----
"$work/noop" --listen 127.0.0.1:0 --body-bytes "$body_bytes" >"$work/noop.out" 2>&1 &
noop_pid=$!
pids+=("$noop_pid")
for _ in $(seq 1 100); do grep -q 'listening on' "$work/noop.out" && break; sleep 0.1; done
noop_url=$(sed -n 's/^noop listening on //p' "$work/noop.out")
wait_http "$noop_url/healthz"
"$work/noop" --listen 127.0.0.1:0 --body-bytes "$body_bytes" --like-sessiond >"$work/noop-like.out" 2>&1 &
like_pid=$!
pids+=("$like_pid")
for _ in $(seq 1 100); do grep -q 'listening on' "$work/noop-like.out" && break; sleep 0.1; done
like_url=$(sed -n 's/^noop listening on //p' "$work/noop-like.out")
wait_http "$like_url/healthz"
header_names() { curl -fsS -o /dev/null -D - "$@" | tr -d '\r' | sed -n 's/^\([A-Za-z-]*\):.*/\1/p' | grep -v -x -e Date -e Content-Length | sort | tr '\n' ' '; }
want_headers=$(header_names -H "Authorization: Bearer $first" "http://127.0.0.1:$pub/v1/session")
like_headers=$(header_names "$like_url/v1/session")
if [ "$want_headers" != "$like_headers" ]; then
  echo "perf: warning: the --like-sessiond no-op sends [$like_headers], sessiond sends [$want_headers]: update internal/perf/noop" >&2
fi
round_noop=() round_like=() round_whoami=() round_ratio=()
for r in $(seq 1 "$rounds"); do
  say "(a) no-op net/http server, ${body_bytes}-byte body: wrk -t1 -c$conns -d${dur}s (round $r of $rounds)"
  round_noop+=("$(run_wrk "noop-$r" "$noop_url/v1/session" "$work/tokens-1k.txt" "$noop_pid")")
  echo "  ${round_noop[-1]}" >&2
  say "(a') the no-op with sessiond's headers and timeouts (round $r of $rounds)"
  round_like+=("$(run_wrk "noop-like-$r" "$like_url/v1/session" "$work/tokens-1k.txt" "$like_pid")")
  echo "  ${round_like[-1]}" >&2
  say "(b) GET /v1/session, 1,000 sessions: wrk -t1 -c$conns -d${dur}s (round $r of $rounds)"
  round_whoami+=("$(run_wrk "whoami-$r" "http://127.0.0.1:$pub/v1/session" "$work/tokens-1k.txt" "$sessiond_pid")")
  echo "  ${round_whoami[-1]}" >&2
  round_ratio+=("$(awk -v a="$(field "${round_whoami[-1]}" rps)" -v b="$(field "${round_noop[-1]}" rps)" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')")
done
kill "$noop_pid" "$like_pid"; wait "$noop_pid" "$like_pid" 2>/dev/null || true
# The round of the median ratio (the lower middle one for an even count).
median=$(for i in "${!round_ratio[@]}"; do echo "${round_ratio[$i]} $i"; done | sort -n | awk -v n="$rounds" 'NR == int((n + 1) / 2) { print $2 }')
noop=${round_noop[$median]}
like=${round_like[$median]}
whoami=${round_whoami[$median]}

# ---- (c) login storm ----
say "(c) login storm: 32 connections logging in while wrk measures who-am-I"
"$work/sessiond-load" --target "http://127.0.0.1:$pub" --admin "http://127.0.0.1:$adm" \
  --scenario login --connections 32 --users 32 --warmup 1s --duration "$((dur + 1))s" --timeout 60s \
  --json "$out/login-storm.json" >"$out/login-storm.txt" 2>"$work/storm.err" &
storm_pid=$!
pids+=("$storm_pid")
for _ in $(seq 1 600); do grep -q 'login: started' "$work/storm.err" && break; sleep 0.1; done
sleep 1 # the storm's warm-up
storm=$(run_wrk storm "http://127.0.0.1:$pub/v1/session" "$work/tokens-1k.txt")
echo "  $storm" >&2
wait "$storm_pid" || { cat "$work/storm.err" >&2; exit 1; }
cp "$work/storm.err" "$out/login-storm.err"
logins=$(awk '$1 == "login" && $2 == "login" { print $4 }' "$out/login-storm.txt" | tr -d ,)
login_p99=$(awk '$1 == "login" && $2 == "login" { print $7 }' "$out/login-storm.txt")
login_errors=$(awk '$1 == "login" && $2 == "login" { print $10 }' "$out/login-storm.txt")
rss_1k=$(rss_mib "$sessiond_pid")
stop_sessiond

# ---- (d) scale ----
if [ "$big" -gt 0 ]; then
  say "(d) $big sessions: seeding a fresh SQLite file"
  "$work/seed" --db "$work/big.db" --sessions "$big" --users 32 --tokens-out "$work/tokens-big.txt" 2>&1 | sed 's/^/  /' >&2
  start_sessiond "sqlite://$work/big.db"
  shuf -n 1000 "$work/tokens-big.txt" >"$work/tokens-big-1k.txt"
  say "(d) GET /v1/session, 1,000 tokens picked among $big: wrk -t1 -c$conns -d${dur}s"
  scale=$(run_wrk scale "http://127.0.0.1:$pub/v1/session" "$work/tokens-big-1k.txt")
  echo "  $scale" >&2
  say "(d') GET /v1/session, tokens picked at random among all $big: wrk -t1 -c$conns -d${dur}s"
  spread=$(run_wrk spread "http://127.0.0.1:$pub/v1/session" "$work/tokens-big.txt")
  echo "  $spread" >&2
  rss_big=$(rss_mib "$sessiond_pid")
  stop_sessiond
fi

# ---- summary ----
median_field() { # median_field NAME LINE...: the median of NAME= over the lines
  local name=$1; shift
  for l in "$@"; do field "$l" "$name"; done | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%+.0f%%", (a / b - 1) * 100 }'; }
n_rps=$(field "$noop" rps); n_p99=$(field "$noop" p99_ms); n_p50=$(field "$noop" p50_ms)
w_rps=$(field "$whoami" rps); w_p99=$(field "$whoami" p99_ms); w_p50=$(field "$whoami" p50_ms)
s_rps=$(field "$storm" rps); s_p99=$(field "$storm" p99_ms); s_p50=$(field "$storm" p50_ms)
target_ratio=$(case $backend in sqlite) echo 0.80 ;; redis) echo 0.70 ;; postgres) echo 0.60 ;; esac)
{
  echo "sessiond perf: $backend, $(nproc) CPUs, wrk -t1 -c$conns -d${dur}s, $stamp, revision $(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "GET /v1/session answers ${body_bytes} bytes; the no-op answers as many."
  echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
  echo
  printf '%-44s %10s %9s %9s %8s %7s  %s\n' measurement "req/s" "p50 ms" "p99 ms" errors ratio target
  printf '%s\n' "--------------------------------------------------------------------------------------------------------------"
  printf '%-44s %10.0f %9.3f %9.3f %8s %7s  %s\n' "(a) no-op net/http" "$n_rps" "$n_p50" "$n_p99" "$(field "$noop" errors)" 1.00 baseline
  printf '%-44s %10.0f %9.3f %9.3f %8s %7s  %s\n' "(a') no-op + sessiond's headers, timeouts" "$(field "$like" rps)" "$(field "$like" p50_ms)" \
    "$(field "$like" p99_ms)" "$(field "$like" errors)" "$(ratio "$(field "$like" rps)" "$n_rps")" "what the headers and timeouts cost"
  printf '%-44s %10.0f %9.3f %9.3f %8s %7s  %s\n' "(b) GET /v1/session, 1,000 sessions" "$w_rps" "$w_p50" "$w_p99" "$(field "$whoami" errors)" \
    "$(ratio "$w_rps" "$n_rps")" ">= $target_ratio of the no-op"
  printf '%-44s %10s %9s %9s %8s %7s  %s\n' "    its p99 / the no-op's p99" "" "" "" "" "$(ratio "$w_p99" "$n_p99")" "<= 2.00"
  printf '%-44s %10s %9s %9s %8s %7s  %s\n' "    its req/s / (a')'s" "" "" "" "" "$(ratio "$w_rps" "$(field "$like" rps)")" "what the handler costs"
  cpu_noop=$(median_field cpu_us "${round_noop[@]}"); cpu_like=$(median_field cpu_us "${round_like[@]}"); cpu_whoami=$(median_field cpu_us "${round_whoami[@]}")
  printf '    server CPU per request, median of rounds: (a) %s us, (a'"'"') %s us, (b) %s us: the handler %s us, headers and timeouts %s us\n' \
    "$cpu_noop" "$cpu_like" "$cpu_whoami" "$(awk -v a="$cpu_whoami" -v b="$cpu_like" 'BEGIN { printf "%.2f", a - b }')" \
    "$(awk -v a="$cpu_like" -v b="$cpu_noop" 'BEGIN { printf "%.2f", a - b }')"
  printf '%-44s %10.0f %9.3f %9.3f %8s %7s  %s\n' "(c) GET /v1/session during a login storm" "$s_rps" "$s_p50" "$s_p99" "$(field "$storm" errors)" \
    "$(ratio "$s_rps" "$w_rps")" "of (b): >= 0.70, p99 < 10 ms ($(pct "$s_rps" "$w_rps") req/s)"
  printf '%-44s %10s %9s %9s %8s %7s  %s\n' "    the storm: POST /v1/login, 32 conns" "${logins:-?}" "" "${login_p99:-?}" "${login_errors:-?}" "" "(sessiond-load; p99 with its unit)"
  if [ "$rounds" -gt 1 ]; then
    printf '    rounds (who-am-I / no-op req/s, and (a'"'"')):'
    for i in "${!round_ratio[@]}"; do
      printf ' %.0f/%.0f=%.2f (%.0f)' "$(field "${round_whoami[$i]}" rps)" "$(field "${round_noop[$i]}" rps)" "${round_ratio[$i]}" "$(field "${round_like[$i]}" rps)"
    done
    printf '; (a) and (b) above are round %d, the median\n' "$((median + 1))"
  fi
  if [ "$big" -gt 0 ]; then
    x_rps=$(field "$scale" rps)
    printf '%-44s %10.0f %9.3f %9.3f %8s %7s  %s\n' "(d) GET /v1/session, $big in the store" "$x_rps" "$(field "$scale" p50_ms)" "$(field "$scale" p99_ms)" \
      "$(field "$scale" errors)" "$(ratio "$x_rps" "$w_rps")" "of (b): >= 0.85 ($(pct "$x_rps" "$w_rps")); 1,000 of them in use"
    y_rps=$(field "$spread" rps)
    printf '%-44s %10.0f %9.3f %9.3f %8s %7s  %s\n' "(d') the same, all $big in use" "$y_rps" "$(field "$spread" p50_ms)" "$(field "$spread" p99_ms)" \
      "$(field "$spread" errors)" "$(ratio "$y_rps" "$w_rps")" "of (b) ($(pct "$y_rps" "$w_rps")); beyond --cache-size, lookups read SQLite"
  fi
  echo
  echo "sessiond resident memory (VmRSS): ${rss_1k} MiB with 1,000 sessions after (b) and (c)${rss_big:+; ${rss_big} MiB with $big sessions after (d) and (d-prime)}"
} | tee "$out/summary.txt"
echo "(raw outputs in $out)" >&2
