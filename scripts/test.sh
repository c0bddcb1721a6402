#!/usr/bin/env bash
# The test command of the README: every test of the module with the race
# detector. It starts the services the backend tests need when they are
# down (PostgreSQL, Redis) and installs the browser for the page tests.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -race -count=1 -timeout 20m "$@" ./...
