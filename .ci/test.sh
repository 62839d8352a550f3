#!/usr/bin/env bash
# Install everything the tests need, start the services they use on loopback, then run lint,
# type checks and the whole test suite. `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need_apt+=(postgresql)
[ -d /usr/share/doc/python3.11/html ] || need_apt+=(python3.11-doc)
# The widget's browser tests drive Debian's chromium; npm builds the widget at install.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v npm >/dev/null || need_apt+=(nodejs npm)
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

# One Redis and one PostgreSQL for the whole run, on loopback ports, both stopped at exit.
REDIS_PORT=${ASSISTANT_TEST_REDIS_PORT:-6391}
POSTGRES_PORT=${ASSISTANT_TEST_POSTGRES_PORT:-6392}
POSTGRES_DIR=/tmp/assistant-test-postgres-$POSTGRES_PORT

# Fast shutdown (SIGINT) of the cluster in $POSTGRES_DIR, if one runs, then remove it.
stop_postgres() {
    local pid
    pid=$(head -n 1 "$POSTGRES_DIR/postmaster.pid" 2>/dev/null || true)
    # The pid file may be stale, its number reused: only signal a postgres.
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$POSTGRES_DIR"
}

stop_services() {
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    stop_postgres
}
trap stop_services EXIT

# Redis keeps nothing on disk.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "/tmp/assistant-test-redis-$REDIS_PORT.pid" --logfile "/tmp/assistant-test-redis-$REDIS_PORT.log"
export ASSISTANT_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# PostgreSQL: a throwaway cluster trusting 127.0.0.1, made and configured by the tests' own
# start_postgres (which runs it as the postgres account when we are root); it waits until the
# server accepts connections and leaves it running. Each test creates its own database in it.
stop_postgres  # a cluster an interrupted run left behind
.venv/bin/python -c 'import sys; from pathlib import Path; from tests.support.servers import start_postgres; start_postgres(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))' \
    "$POSTGRES_PORT" "$POSTGRES_DIR" "/tmp/assistant-test-postgres-$POSTGRES_PORT.log"
export ASSISTANT_TEST_POSTGRES_URL="postgresql+psycopg://assistant@127.0.0.1:$POSTGRES_PORT/postgres"

# Two worker processes (pytest-xdist), one test file per worker at a time so that a module's
# servers start once; much of the suite waits on servers and subprocesses, not the CPU.
.venv/bin/python -m pytest -q -n "${ASSISTANT_TEST_WORKERS:-2}" --dist loadfile \
    --cov=assistant --cov=connectors --cov-report=term:skip-covered --cov-fail-under=75 "$@"
