#!/usr/bin/env bash
# Regenerates cmd/sessiond/default.pgo, the CPU profile that `go build`
# uses for profile-guided optimisation of the sessiond binary (about 5% less
# CPU per who-am-I on this project's measurements; see README, Performance).
#
#   scripts/pgo.sh [--seconds N]
#
# Starts sessiond on a fresh SQLite file with --admin-pprof, creates users
# and sessions with `sessiond-load`, and profiles the server for N seconds
# (default 30) while `sessiond-load` drives it: two thirds of the time
# who-am-I, a third the mixed scenario (who-am-I, session data, logins,
# logouts), which is what a deployment spends its CPU on. Rerun it after a
# change to the request path and commit the new profile.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=30
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) secs=$2; shift 2 ;;
    *) echo "pgo: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $secs =~ ^[0-9]+$ && $secs -ge 6 ]] || { echo "pgo: --seconds takes a whole number, at least 6" >&2; exit 2; }

work=$(mktemp -d /tmp/sessiond-pgo.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# Built without the current profile, so the new one describes plain code.
go build -pgo=off -o "$work/sessiond" ./cmd/sessiond
go build -o "$work/sessiond-load" ./cmd/sessiond-load
export SESSIOND_ADMIN_KEY
SESSIOND_ADMIN_KEY=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
pub=$(free_port); adm=$(free_port)
while [ "$adm" = "$pub" ]; do adm=$(free_port); done
"$work/sessiond" serve --database "sqlite://$work/pgo.db" --listen "127.0.0.1:$pub" --admin-listen "127.0.0.1:$adm" \
  --log-level warn --notify-outbox "$work/outbox" --admin-pprof --write-timeout $((secs + 30))s >"$work/sessiond.log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do curl -fsS -o /dev/null "http://127.0.0.1:$pub/healthz" 2>/dev/null && break; sleep 0.2; done

bench=("$work/sessiond-load" --target "http://127.0.0.1:$pub" --admin "http://127.0.0.1:$adm" --users 32 --sessions 1000 --warmup 1s)
"${bench[@]}" --setup-only >/dev/null
curl -fsS -o "$work/cpu.pprof" -H "Authorization: Bearer $SESSIOND_ADMIN_KEY" \
  "http://127.0.0.1:$adm/debug/pprof/profile?seconds=$secs" &
prof=$!
sleep 0.5
"${bench[@]}" --scenario whoami --duration $((secs * 2 / 3))s >/dev/null
"${bench[@]}" --scenario mixed --duration $((secs / 3))s >/dev/null
wait "$prof"
cp "$work/cpu.pprof" cmd/sessiond/default.pgo
echo "pgo: wrote cmd/sessiond/default.pgo ($(wc -c <cmd/sessiond/default.pgo) bytes) from ${secs}s of load"
