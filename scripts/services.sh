#!/usr/bin/env bash
# Makes sure the services the backend tests talk to are up: PostgreSQL on
# 127.0.0.1:5432 (database "test") and Redis on 127.0.0.1:6379. Installs
# them from Debian's packages when missing, starts them when down. Sourced by
# scripts/test.sh; safe to run again.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_updated=
apt_install() {
  command -v apt-get >/dev/null || { echo "services: cannot install $* (no apt-get)"; return 1; }
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # wait_for NAME CMD...
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: $name did not come up"; return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! command -v pg_isready >/dev/null; then apt_install postgresql; fi
if ! pg_up; then
  echo "services: starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  wait_for PostgreSQL pg_up
fi
# The tests use database "test"; a fresh cluster may not have it, nor a role
# for the current user.
if ! psql -h 127.0.0.1 -d test -c 'select 1' >/dev/null 2>&1; then
  as_root su postgres -c "psql -q -c \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='$(id -un)') THEN CREATE ROLE \\\"$(id -un)\\\" LOGIN SUPERUSER; END IF; END\\\$\\\$;\"" || true
  as_root su postgres -c "createdb -O '$(id -un)' test" 2>/dev/null || true
fi

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
if ! command -v redis-server >/dev/null; then apt_install redis-server; fi
if ! redis_up; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis_up
fi
echo "services: PostgreSQL and Redis are up"
