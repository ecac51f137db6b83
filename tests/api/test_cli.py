"""The client CLI against a real server, each command a `python -m voxbox` subprocess with its
own config directory (VOXBOX_CONFIG_DIR), as a person or a script would run it."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support.api import User
from support.cli import COMMAND_TIMEOUT, login, ok, voxbox
from support.server import ServerProcess
from support.tus import send_voice_note

EVENT_TIMEOUT = 15  # seconds to wait for an expected event line


class Listener:
    """A running `voxbox listen --json` (or without `--json`: as a person reads it); its
    stdout lines are read on a thread so that the test can wait for a line with a timeout
    instead of sleeping."""

    def __init__(self, config_dir: Path, *, as_json: bool = True) -> None:
        args = ["--json"] if as_json else []
        self.stderr_path = config_dir.with_suffix(".listen-stderr")
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voxbox", "listen", *args],
                env={**os.environ, "VOXBOX_CONFIG_DIR": str(config_dir)},
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def frames_until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Every frame printed up to and including the first one for which ``done`` is true."""
        lines = self.lines_until(lambda line: done(json.loads(line)))
        return [json.loads(line) for line in lines]

    def lines_until(self, done: Callable[[str], bool], timeout: float = EVENT_TIMEOUT) -> list[str]:
        """Every line printed up to and including the first one for which ``done`` is true,
        within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such line within {timeout}s: {lines}") from None
            if line is None:
                raise AssertionError(f"listen exited: {self.stderr_path.read_text()}")
            lines.append(line)
            if done(line):
                return lines

    def stderr(self) -> str:
        """What it printed on stderr so far, line breaks (of the console's wrapping) as spaces."""
        return " ".join(self.stderr_path.read_text().split())

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=COMMAND_TIMEOUT)


@contextmanager
def listening(config_dir: Path, *, as_json: bool = True) -> Iterator[Listener]:
    listener = Listener(config_dir, as_json=as_json)
    try:
        yield listener
    finally:
        if listener.proc.poll() is None:
            listener.proc.kill()
            listener.proc.wait()


def is_ready(frame: dict[str, Any]) -> bool:
    return frame.get("type") == "ready"


def test_login_send_chats_listen(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice, bob = make_user(), make_user()
    alice_dir, bob_dir = tmp_path / "alice", tmp_path / "bob"
    login(server, alice, alice_dir)
    login(server, bob, bob_dir)

    credentials = alice_dir / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    stored = json.loads(credentials.read_text())
    assert stored["url"] == server.url
    assert stored["handle"] == alice.handle

    message_id = ok(voxbox(alice_dir, "send", bob.handle, "--text", "Hi Bob, from the CLI")).strip()
    assert message_id

    chats = json.loads(ok(voxbox(alice_dir, "chats", "--json")))["chats"]
    direct = [c for c in chats if c["last_message"] and c["last_message"]["id"] == message_id]
    assert len(direct) == 1, chats
    assert direct[0]["kind"] == "direct"
    assert {m["handle"] for m in direct[0]["members"]} == {alice.handle, bob.handle}
    assert direct[0]["last_message"]["text"] == "Hi Bob, from the CLI"

    def is_the_message(frame: dict[str, Any]) -> bool:
        return frame.get("type") == "message.created" and frame["data"]["id"] == message_id

    with listening(bob_dir) as listener:
        frames = listener.frames_until(is_the_message)
        assert frames[-1]["data"]["sender"] == alice.handle
        assert frames[-1]["data"]["text"] == "Hi Bob, from the CLI"
        assert listener.interrupt() == 0
    state = json.loads((bob_dir / "listen-state.json").read_text())
    assert state["seq"] >= frames[-1]["seq"]

    # A second `voxbox listen` resumes where the first stopped: the message is not repeated.
    with listening(bob_dir) as listener:
        frames = listener.frames_until(is_ready)
        assert not [f for f in frames if is_the_message(f)], frames
        assert listener.interrupt() == 0


def test_listen_resyncs_when_the_server_was_restored_to_an_older_log(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    """The position `voxbox listen` saved is past the end of the server's log (the server was
    restored from an older backup): listen drops it, says so, shows the unread chat and prints
    the live events that follow, which the old position would have hidden."""
    alice, bob = make_user(), make_user()
    bob_dir = login(server, bob, tmp_path / "bob")
    chat_id = alice.direct_with(bob)
    alice.send(chat_id, "sent while the backup was restored")
    end = bob.latest_seq()
    state_file = bob_dir / "listen-state.json"

    def saved_beyond_the_log() -> None:  # what a listen before the restore left behind
        state = {"url": server.url, "user_id": bob.id, "handle": bob.handle, "seq": end + 1000}
        state_file.write_text(json.dumps(state))

    saved_beyond_the_log()
    with listening(bob_dir) as listener:
        frames = listener.frames_until(is_ready)
        assert frames == [{"type": "ready", "seq": end, "reset": True}]
        live = alice.send(chat_id, "after the restore")
        frames = listener.frames_until(lambda f: f.get("type") == "message.created")
        assert frames[-1]["data"]["id"] == live["id"] and frames[-1]["seq"] == end + 1
        assert listener.interrupt() == 0
    state = json.loads(state_file.read_text())
    assert (state["user_id"], state["seq"]) == (bob.id, end + 1)

    saved_beyond_the_log()
    with listening(bob_dir, as_json=False) as listener:
        line = listener.lines_until(lambda line: "unread" in line)[-1]
        assert f"[{alice.handle}] 2 unread" in line and "after the restore" in line, line
        assert f"re-synced at event {end + 1}" in listener.stderr()
        assert listener.interrupt() == 0
    assert json.loads(state_file.read_text())["seq"] == end + 1


def test_send_resolves_self_and_group_title(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice, bob = make_user(), make_user()
    title = f"crew {alice.handle}"
    group = alice.http.post(
        "/chats", json={"kind": "group", "title": title, "handles": [bob.handle]}
    )
    assert group.status_code == 201, group.text
    config_dir = tmp_path / "alice"
    login(server, alice, config_dir)

    note_id = ok(voxbox(config_dir, "send", "self", "--text", "note")).strip()
    group_id = ok(voxbox(config_dir, "send", title, "--text", "hello crew")).strip()

    chats = {c["id"]: c for c in json.loads(ok(voxbox(config_dir, "chats", "--json")))["chats"]}
    assert chats[group.json()["id"]]["last_message"]["id"] == group_id
    [own] = [c for c in chats.values() if c["kind"] == "self"]
    assert own["last_message"]["id"] == note_id

    table = ok(voxbox(config_dir, "chats"))
    assert title in table
    assert "hello crew" in table


def test_errors_and_logout(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice = make_user()
    config_dir = tmp_path / "alice"

    result = voxbox(config_dir, "chats")
    assert result.returncode == 1
    assert "Not logged in" in result.stderr

    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    args = ["login", server.url, "--handle", alice.handle, "--password-file", str(wrong)]
    result = voxbox(config_dir, *args)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert not (config_dir / "credentials.json").exists()

    login(server, alice, config_dir)
    result = voxbox(config_dir, "send", "nobody_here_at_all", "--text", "x")
    assert result.returncode == 1
    assert "Error: Unknown chat" in result.stderr

    token = json.loads((config_dir / "credentials.json").read_text())["token"]
    ok(voxbox(config_dir, "logout"))
    assert not (config_dir / "credentials.json").exists()
    with server.client(token) as http:
        assert http.get("/me").status_code == 401


def test_create_a_group_and_clear_usage_errors(make_user, server, tmp_path) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    config = login(server, alice, tmp_path / "alice")
    group_id = ok(voxbox(config, "group", "Family", bob.handle, f"@{carol.handle}")).strip()
    chat = alice.http.get(f"/chats/{group_id}").json()
    assert chat["title"] == "Family"
    assert sorted(m["handle"] for m in chat["members"]) == sorted(
        [alice.handle, bob.handle, carol.handle]
    )
    neither = voxbox(config, "send", bob.handle)
    assert neither.returncode == 2 and "give a FILE to send, or --text" in neither.stderr


def test_the_first_start_names_the_real_address_to_register_at(make_server) -> None:
    srv = make_server(registration="invite")
    log = srv.log_path.read_text()
    assert f"voxbox register {srv.url} --invite" in log and "HOST:PORT" not in log


def test_search_prints_the_hits_with_their_chat_sender_and_matched_words(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice, bob = make_user(), make_user()
    title = f"walkers {alice.handle}"
    group = alice.group(title, bob)
    bob.send(alice.direct_with(bob), "Bring the umbrella on Sunday")
    alice.send(group, "Umbrellas for everyone\nsee you at 10")
    alice.send(group, "nothing to see here")
    config = login(server, alice, tmp_path / "alice")

    shown = ok(voxbox(config, "search", "umbrel")).splitlines()
    assert len(shown) == 4, shown  # two hits, two lines each
    heads, snippets = shown[0::2], shown[1::2]
    assert sorted(snippets) == [
        "  Bring the umbrella on Sunday",
        "  Umbrellas for everyone see you at 10",
    ]
    by_snippet = dict(zip(snippets, heads, strict=True))
    assert by_snippet["  Bring the umbrella on Sunday"].startswith(f"[{bob.handle}] {bob.handle}  ")
    assert by_snippet["  Umbrellas for everyone see you at 10"].startswith(
        f"[{title}] {alice.handle}  "
    )

    # On a terminal, the matched words stand out.
    coloured = ok(voxbox(config, "search", "umbrella", "sunday", env={"FORCE_COLOR": "1"}))
    assert "\x1b[1;33mumbrella\x1b[0m" in coloured and "\x1b[1;33mSunday\x1b[0m" in coloured

    # Narrowed to a chat (a group's title, or the handle of a direct chat), or to a kind.
    in_group = ok(voxbox(config, "search", "umbrel", "--chat", title))
    assert "Umbrellas" in in_group and "Sunday" not in in_group
    in_direct = ok(voxbox(config, "search", "umbrel", "--chat", f"@{bob.handle}"))
    assert "Sunday" in in_direct and "Umbrellas" not in in_direct
    none = voxbox(config, "search", "umbrel", "--kind", "voice")
    assert none.returncode == 0 and none.stdout == ""
    assert "No messages match 'umbrel'." in none.stderr
    assert ok(voxbox(config, "search", "umbrel", "--before", "2000-01-01")) == ""

    found = json.loads(ok(voxbox(config, "search", "umbrel", "--limit", "1", "--json")))
    assert len(found["results"]) == 1 and found["has_more"] is True
    assert "More messages match" in voxbox(config, "search", "umbrel", "--limit", "1").stderr

    # What cannot be searched is an error, as in every command.
    for args, error in (
        (["?!"], "Error: "),
        (["umbrel", "--limit", "1000"], "Error: "),
        (["umbrel", "--chat", "nobody_we_know"], "Error: Unknown chat"),
    ):
        failed = voxbox(config, "search", *args)
        assert failed.returncode == 1 and failed.stderr.startswith(error), failed.stderr
    bad_time = voxbox(config, "search", "umbrel", "--before", "last week")
    assert bad_time.returncode == 2 and "--before" in bad_time.stderr
    # Searching a chat by a handle never starts a chat with them.
    stranger = make_user()
    failed = voxbox(config, "search", "umbrel", "--chat", stranger.handle)
    assert failed.returncode == 1 and "Unknown chat" in failed.stderr
    assert not [c for c in alice.chats() if c["kind"] == "direct" and stranger.handle in str(c)]


def test_me_shows_and_switches_transcripts_of_my_messages(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice = make_user(display_name="Alice A")
    config = login(server, alice, tmp_path / "alice")

    shown = ok(voxbox(config, "me"))
    assert shown.startswith(f"{alice.handle} (Alice A)")
    assert "Transcripts of your voice and audio messages: on" in shown

    off = voxbox(config, "me", "--transcribe", "off")
    assert off.returncode == 0 and "Transcripts of your voice and audio messages: off" in off.stdout
    assert "get no transcripts" in off.stderr
    assert alice.me()["transcribe"] is False
    assert "messages: off" in ok(voxbox(config, "me"))
    assert json.loads(ok(voxbox(config, "me", "--transcribe", "on", "--json")))["transcribe"]
    assert alice.me()["transcribe"] is True

    wrong = voxbox(config, "me", "--transcribe", "maybe")
    assert wrong.returncode == 2 and alice.me()["transcribe"] is True


def test_inbox_lists_the_voice_messages_i_have_not_played(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice, bob = make_user(), make_user()
    config = login(server, alice, tmp_path / "alice")
    chat_id = alice.direct_with(bob)
    empty = voxbox(config, "inbox")
    assert empty.returncode == 0 and empty.stdout == ""
    assert "No unplayed voice messages." in empty.stderr

    note = send_voice_note(bob, chat_id, 1.0)
    [line] = ok(voxbox(config, "inbox")).splitlines()  # no transcript: the engine is off here
    assert line.startswith(f"[{bob.handle}] {bob.handle}  ")
    assert line.endswith(f"  Voice message (0:01)  {note['id']}")
    assert alice.http.post(f"/messages/{note['id']}/played").status_code == 204
    assert ok(voxbox(config, "inbox")) == ""
