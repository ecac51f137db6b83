"""The OpenAPI schema tells the truth (issue 9, item 13): schemathesis generates requests from
it, valid and invalid, sends them to a real server and checks every answer against it: no
5xx, only documented statuses and content types, problem JSON that fits its schema, invalid
requests refused, valid ones taken (see schemathesis.toml for the rules a schema cannot say)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.api import make_user_on
from support.smtp import smtp_server

HERE = Path(__file__).parent
EXAMPLES = 25  # per operation and phase: a few minutes on two cores for both backends


def test_a_fuzz_run_finds_nothing_the_schema_does_not_say(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with smtp_server() as mailbox:
        srv = make_server(**mailbox.settings())
        user, leaver = make_user_on(srv, prefix="fuzz"), make_user_on(srv, prefix="leave")
        env = {
            **os.environ,
            "PYTHONPATH": str(HERE),
            "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
            "VOXBOX_FUZZ_TOKEN": user.token,
            "VOXBOX_FUZZ_LOGOUT_TOKEN": leaver.token,
        }
        st = Path(sys.executable).with_name("st")
        run = subprocess.run(
            [
                str(st),
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "run",
                f"{srv.url}/api/v1/openapi.json",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "20261204",
                "--no-color",
            ],
            env=env,
            cwd=tmp_path,  # schemathesis keeps a cache there
            capture_output=True,
            text=True,
            timeout=600,
        )
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "Traceback" not in srv.log_tail(200_000)
