"""`voxbox listen` on a message the server withdrew (its media could not be processed)."""

from __future__ import annotations

from typing import Any

from voxbox.cli.client_commands import describe_event, message_preview

REASON = "the audio is longer than the limit of 0:02"


def withdrawn(sender: str, kind: str = "voice") -> dict[str, Any]:
    data = {
        "id": "m1",
        "chat_id": "c1",
        "sender": sender,
        "kind": kind,
        "text": None,
        "media": None,
        "deleted": True,
        "view_once": False,
        "withdrawn": {"reason": REASON},
    }
    return {"seq": 7, "type": "message.updated", "data": data}


def test_the_sender_is_told_why() -> None:
    chat = {"id": "c1", "kind": "direct", "members": [{"handle": "ann"}, {"handle": "bob"}]}
    line = describe_event(withdrawn("ann"), chat, "ann").plain
    assert line == f"[bob] your voice message to bob could not be processed: {REASON}"
    group = {"id": "c1", "kind": "group", "title": "family"}
    line = describe_event(withdrawn("ann", "audio"), group, "ann").plain
    assert line == f"[family] your audio message to family could not be processed: {REASON}"


def test_recipients_see_it_withdrawn() -> None:
    chat = {"id": "c1", "kind": "group", "title": "family"}
    line = describe_event(withdrawn("ann"), chat, "bob").plain
    assert line == f"[family] ann: (withdrawn: {REASON}) (updated)"
    assert message_preview(withdrawn("ann")["data"]) == f"(withdrawn: {REASON})"
