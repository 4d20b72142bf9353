"""End-to-end fixtures: a real `clawfirst up` stack on a temporary data directory.

The binaries come from CLAWFIRST_BIN_DIR (set by scripts/test to cargo's target directory).
Every test talks to the server through a real MCP client: the official Python MCP SDK, or the
MCP Inspector CLI.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BIN_DIR = Path(os.environ.get("CLAWFIRST_BIN_DIR", "target/debug"))


def binary(name: str) -> str:
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build with `cargo build --bins` or run scripts/test")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, what: str) -> None:
    """Waits up to 30 s for `/healthz` on `port` to answer 200; fails the test if `proc` exits
    or the time runs out."""
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"{what} exited with {proc.returncode}")
            time.sleep(0.1)
    pytest.fail(f"{what} did not become healthy")


class Stack:
    """A running `clawfirst up`."""

    def __init__(self, data_dir: Path, port: int | None = None, log_level: str | None = None):
        self.data_dir = data_dir
        self.log_level = log_level
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    def start(self) -> "Stack":
        level = self.log_level or os.environ.get("CLAWFIRST_LOG", "warn")
        env = dict(os.environ, CLAWFIRST_LOG=level)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-up.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                binary("clawfirst"),
                "up",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            log = (self.data_dir.parent / f"{self.data_dir.name}-up.log").read_text()
            pytest.fail(f"clawfirst up exited with {self.proc.returncode}:\n{log[-4000:]}")
        self.info = json.loads(line)
        wait_healthy(self.port, self.proc, "clawfirst up")
        return self

    @property
    def url(self) -> str:
        return self.info["mcp_url"]

    @property
    def api_key(self) -> str:
        return self.info["api_key"]

    @property
    def admin_url(self) -> str:
        return self.info["admin_url"]

    def clawfirst(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs an operator command (`clawfirst ARGS --data-dir D`) against this stack; with
        `check`, a non-zero exit fails the test."""
        done = run_clawfirst(*args, "--data-dir", str(self.data_dir))
        if check:
            assert done.returncode == 0, f"clawfirst {' '.join(args)}: {done.stderr}"
        return done

    def clawfirst_json(self, *args: str) -> dict:
        """An operator command's `--json` answer."""
        return json.loads(self.clawfirst(*args, "--json").stdout)

    def admin(
        self, method: str, path: str, body: dict | None = None, token: str | None = None
    ) -> tuple[int, dict | str]:
        """One admin API request (path below /admin/v1) with the admin token from up.json, or
        `token`; returns the status and the JSON (or text) body."""
        token = token if token is not None else self.info["admin_token"]
        request = urllib.request.Request(
            f"{self.admin_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {token.strip()}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else 0


def run_clawfirst(*args: str) -> subprocess.CompletedProcess:
    """Runs the `clawfirst` binary with ARGS and captures its output."""
    return subprocess.run(
        [binary("clawfirst"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, CLAWFIRST_LOG="warn"),
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("up") / "data").start()
    yield s
    s.stop()
