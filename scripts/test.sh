#!/usr/bin/env bash
# The test command of the README: every test of the module with the race
# detector. It first makes sure the services the backend tests need are up
# (PostgreSQL, Redis, a three-node Redis Cluster) and the browser tests
# need (chromium, axe-core), then runs go test, then
# stops the cluster it started. Extra arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh
./scripts/browser.sh

cleanup() { :; }
if [ -x scripts/redis-cluster.sh ] && [ -z "${SESSIOND_TEST_REDIS_CLUSTER:-}" ]; then
  cluster_env=$(mktemp)
  ./scripts/redis-cluster.sh start >"$cluster_env"
  export SESSIOND_TEST_REDIS_CLUSTER
  SESSIOND_TEST_REDIS_CLUSTER=$(sed -n 's/^SESSIOND_TEST_REDIS_CLUSTER=//p' "$cluster_env" | tail -n1)
  cleanup() { ./scripts/redis-cluster.sh stop >/dev/null 2>&1 || true; rm -f "$cluster_env"; }
fi
trap cleanup EXIT

# One package at a time (-p 1): the backend, e2e and browser packages each
# start real servers and browsers and some measure how soon something
# happens; on a 2-core machine two such packages at once starved each
# other's servers for seconds. Tests inside a package still run in
# parallel.
go test -race -count=1 -p 1 -timeout 30m "$@" ./...
