"""Drive Debian's ``age`` tool, which reads passphrases only from a terminal: give it one."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

AGE = "/usr/bin/age"


def decrypt_with_passphrase(path: Path, passphrase: str, out: Path, timeout: float = 60) -> str:
    """Run ``age -d -o OUT PATH`` and type the passphrase; returns what it printed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.execv(AGE, [AGE, "-d", "-o", str(out), str(path)])
    output = b""
    typed = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            output += data
            if not typed and b"passphrase" in output.lower():
                os.write(fd, passphrase.encode() + b"\n")
                typed = True
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise subprocess.CalledProcessError(os.waitstatus_to_exitcode(status), AGE, text)
    return text
