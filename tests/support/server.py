"""A real `voxbox serve` in a subprocess: free port, own data dir, env overrides.

The API tests talk to it over HTTP and WebSocket exactly as a client would. Its stdout and stderr
go to `server.log` in its data dir; every failure to start (or an unexpected death) shows the tail
of that log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC_DIR = REPO_ROOT / "src"
HOST = "127.0.0.1"
READY_TIMEOUT = 20.0
POLL_INTERVAL = 0.05
# The cheapest argon2id cost: a test server registers hundreds of users, and the production cost
# (about 0.2 s of CPU per hash or login) would add minutes to the suite. A test that needs the
# production cost sets these to None (the default).
CHEAP_PASSWORD_HASH = {
    "VOXBOX_PASSWORD_HASH__TIME_COST": "1",
    "VOXBOX_PASSWORD_HASH__MEMORY_COST": "8",
    "VOXBOX_PASSWORD_HASH__PARALLELISM": "1",
    "VOXBOX_BACKUP__WORK_FACTOR": "10",  # scrypt of backups: 1 MiB instead of 256
    "VOXBOX_METRICS_TOKEN": "test-metrics",  # /metrics is off without one
    # A transcript of every voice note every test sends would cost the suite a process and
    # seconds of CPU each: the tests of transcripts turn it on (TRANSCRIBING).
    "VOXBOX_TRANSCRIBE__ENGINE": "off",
}
TRANSCRIBING = {"VOXBOX_TRANSCRIBE__ENGINE": "pocketsphinx"}


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def base_env(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """The environment of a server or CLI process.

    The caller's own VOXBOX_* variables are dropped so a developer's shell cannot change what the
    tests see; `src/` is put on PYTHONPATH so the tests also run without an editable install.
    A value of None in `overrides` removes that variable.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXBOX_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class ServerDied(RuntimeError):
    pass


# Every ServerProcess created in this test run, in order (conftest shows the logs of the ones a
# failing test used).
CREATED: list[ServerProcess] = []


WORKER_READY = "voxbox worker running jobs"


class ServerProcess:
    """One `python -m voxbox serve` process (with `serve_args`, e.g. "--no-jobs"), or with
    `worker=True` one `python -m voxbox worker`, which has no address: it is ready when it logs
    WORKER_READY.

    `env` holds VOXBOX_* settings (VOXBOX_DATA_DIR is set from `data_dir`, passwords are hashed
    at CHEAP_PASSWORD_HASH unless `env` says otherwise). The port is fixed at construction so
    `restart()` comes back on the same address.
    """

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str | None],
        *,
        port: int | None = None,
        name: str = "server",
        serve_args: tuple[str, ...] = (),
        worker: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.name = name
        self.worker = worker
        self.command = (
            ["worker"]
            if worker
            else ["serve", "--host", HOST, "--port", str(self.port), *serve_args]
        )
        self.settings: dict[str, str | None] = {
            "VOXBOX_DATA_DIR": str(self.data_dir),
            **CHEAP_PASSWORD_HASH,
            **env,
        }
        self.env = base_env(self.settings)
        self.log_path = self.data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None
        CREATED.append(self)

    # --- addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/api/v1/events"

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        """An httpx client on the API base path, with the bearer token when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs.setdefault("timeout", 15.0)
        return httpx.Client(base_url=self.api_url, headers=headers, **kwargs)  # type: ignore[arg-type]

    def async_client(self, token: str | None = None, **kwargs: object) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs.setdefault("timeout", 15.0)
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, **kwargs)  # type: ignore[arg-type]

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> ServerProcess:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        log.write(f"\n===== starting {self.name} on port {self.port} =====\n".encode())
        log.flush()
        self._log_file = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voxbox", *self.command],
            cwd=self.data_dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: kill() reaches anything the server forks, and a Ctrl-C on the
            # test run does not hit the server before teardown does.
            start_new_session=True,
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll GET /healthz until 200 (a worker: its log until WORKER_READY); fail with the
        server's output if it dies or times out."""
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        with httpx.Client(timeout=2.0) as c:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self._reap()
                    raise ServerDied(
                        f"{self.name} exited with {code} before it was ready\n{self.log_tail()}"
                    )
                if self.worker:
                    if WORKER_READY in self.log_path.read_text(errors="replace"):
                        return
                    time.sleep(POLL_INTERVAL)
                    continue
                try:
                    r = c.get(f"{self.url}/healthz")
                    if r.status_code == 200:
                        return
                    last_error = f"/healthz answered {r.status_code}: {r.text[:200]}"
                except httpx.TransportError as e:
                    last_error = repr(e)
                time.sleep(POLL_INTERVAL)
        self.stop()
        raise ServerDied(
            f"{self.name} not ready after {timeout:.0f}s ({last_error})\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the server's process group (we created it) and, for SIGKILL, reap it."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait(timeout=10)
            self._reap()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, then SIGKILL. Safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._reap()

    def restart(self, env: Mapping[str, str | None] | None = None) -> ServerProcess:
        """Stop if still running, then start again on the same port and data dir, with the
        settings in `env` changed (None removes one)."""
        self.stop()
        if env:
            self.settings.update(env)
            self.env = base_env(self.settings)
        return self.start()

    def _reap(self) -> None:
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None

    # --- diagnostics ---------------------------------------------------------------------------
    def log_tail(self, max_chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        if len(text) > max_chars:
            text = "...\n" + text[-max_chars:]
        return f"--- {self.name} log ({self.log_path}) ---\n{text}"

    # --- the admin CLI, with the same settings ---------------------------------------------------
    def run_cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "voxbox", *args],
            cwd=self.data_dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def admin_create_user(self, handle: str, password: str, *, admin: bool = True) -> None:
        pw_file = self.data_dir / f"pw-{handle}.txt"
        pw_file.write_text(password)  # no newline: works whether or not the CLI strips one
        pw_file.chmod(0o600)
        args = ["admin", "create-user", handle, "--password-file", str(pw_file)]
        if admin:
            args.insert(3, "--admin")
        r = self.run_cli(*args)
        assert r.returncode == 0, (
            f"`voxbox {' '.join(args)}` exited {r.returncode}\n"
            f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        )

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} {self.url} data={self.data_dir}>"
