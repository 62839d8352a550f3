#!/usr/bin/env bash
# Install everything the tests need, start the services they use on loopback, then run lint,
# type checks and the whole test suite. `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
[ -d /usr/share/doc/python3.11/html ] || need_apt+=(python3.11-doc)
if [ ${#need_apt[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PYTHON=$(command -v python3.11 || command -v python3)
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

# One Redis for the whole run, on a loopback port, keeping nothing on disk.
REDIS_PORT=${ASSISTANT_TEST_REDIS_PORT:-6391}
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "/tmp/assistant-test-redis-$REDIS_PORT.pid" --logfile "/tmp/assistant-test-redis-$REDIS_PORT.log"
trap 'redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true' EXIT
export ASSISTANT_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

.venv/bin/python -m pytest -q --cov=assistant --cov=connectors --cov-report=term:skip-covered --cov-fail-under=75 "$@"
