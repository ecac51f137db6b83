"""What the client commands share: the consoles, error reporting, the stored login.

stdout (`out`) is for results, stderr (`err`) for progress and errors. Use them through the
module (`ui.out`, `ui.err`), not imported by name, so tests can swap them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.text import Text

from voxbox.client.config import Credentials, load_credentials
from voxbox.client.http import VoxboxAPIError, VoxboxClient, VoxboxError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def fail(title: str, detail: str = "", hint: str = "") -> NoReturn:
    message = f"Error: {title}: {detail}" if detail else f"Error: {title}"
    err.print(Text(message, style="red"), soft_wrap=True)
    if hint:
        err.print(hint, soft_wrap=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def reporting_errors(*, logged_in: bool = True) -> Iterator[None]:
    """Turn client errors inside the block into an error line and exit code 1."""
    try:
        yield
    except VoxboxAPIError as exc:
        # A rejected stored token means the login is stale, not that the command was wrong.
        stale = logged_in and exc.status == 401
        fail(exc.title, exc.detail, "Run 'voxbox login URL' to log in again." if stale else "")
    except VoxboxError as exc:
        fail(exc.title, exc.detail)
    except httpx.HTTPError as exc:
        fail("Cannot reach the server", str(exc) or type(exc).__name__)
    except BrokenPipeError:
        # The reader went away (`voxbox listen --json | head`): nothing to report to anyone.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    except OSError as exc:
        fail("File access failed", str(exc))


def load_login() -> Credentials:
    """The stored login; exits with a hint when there is none."""
    with reporting_errors():
        credentials = load_credentials()
    if credentials is None:
        fail("Not logged in", hint="Run 'voxbox login URL' (or 'voxbox register URL') first.")
    return credentials


def client_for(credentials: Credentials) -> VoxboxClient:
    return VoxboxClient(credentials.url, credentials.token)


def print_json(data: Any, indent: int | None = None) -> None:
    # Plain write, not rich: rich would wrap long lines and break one-object-per-line output.
    sys.stdout.write(json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
    sys.stdout.flush()
