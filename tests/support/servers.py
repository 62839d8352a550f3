"""Start and stop real servers (redis-server, chroma) on free loopback ports for tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import redis


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start a throwaway redis-server on ``port`` and wait until it answers."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            client.close()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop(process)
                raise RuntimeError(f"redis-server did not start: {log_path.read_text()}") from None
            time.sleep(0.05)


def start_chroma(port: int, path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``chroma run`` on ``port`` with data in ``path`` and wait for its heartbeat."""
    executable = shutil.which("chroma") or str(Path(__file__).parents[2] / ".venv/bin/chroma")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [executable, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=0.5).raise_for_status()
            return process
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop(process)
                raise RuntimeError(f"chroma did not start: {log_path.read_text()}") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server process and reap it."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
