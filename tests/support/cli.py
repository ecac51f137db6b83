"""Running the voxbox CLI as a subprocess, with its own config directory, for the API tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from support.api import User
from support.server import ServerProcess, base_env

COMMAND_TIMEOUT = 60  # seconds for one CLI command (processing included)


def voxbox(
    config_dir: Path,
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxbox", *args],
        env=base_env({"VOXBOX_CONFIG_DIR": str(config_dir), **(env or {})}),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def login(server: ServerProcess, user: User, config_dir: Path) -> Path:
    password_file = config_dir.with_suffix(".password")
    password_file.write_text(user.password + "\n")
    args = ["login", server.url, "--handle", user.handle, "--password-file", str(password_file)]
    ok(voxbox(config_dir, *args))
    return config_dir
