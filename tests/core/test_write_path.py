"""The batched write path: posts commit together, and one post's failure is its own.

Core-level: ``do_send_messages`` runs on a list of posts through ``Database.run_write`` (one
transaction), and ``send_message`` through the write queue with many callers at once.
"""

from __future__ import annotations

import asyncio

import pytest

from voxbox.core import chats, messages
from voxbox.core.backends import Backends
from voxbox.core.errors import Forbidden, Invalid, NotFound
from voxbox.core.events import events_after
from voxbox.core.messages import NewMessage, Post, Posted, do_send_messages
from voxbox.events.bus import Envelope
from voxbox.metrics import WRITE_BATCH_SIZE


def text(chat_id: str, client_id: str, body: str = "hi", **kw: str) -> NewMessage:
    return NewMessage(chat_id, client_id, "text", body, **kw)


async def test_one_transaction_posts_many_and_fails_only_the_bad_ones(b: Backends, make_users):
    alice, bob, carol = await make_users("w", 3)
    direct, _ = await chats.create_direct(b, alice, bob.handle)
    theirs, _ = await chats.create_direct(b, bob, carol.handle)
    earlier, _ = await messages.send_message(
        b, alice, direct.id, client_id="c0", kind="text", text="0"
    )

    posts = [
        Post(alice.id, alice.handle, (text(direct.id, "c1", "one"),)),
        Post(alice.id, alice.handle, (text(theirs.id, "c2"),)),  # not her chat
        Post(alice.id, alice.handle, (text(direct.id, "c0"),)),  # a retry of a sent one
        Post(
            alice.id,
            alice.handle,
            (text(direct.id, "c3", reply_to_id="01NOSUCHMESSAGE00000000000"),),
        ),
        Post(bob.id, bob.handle, (text(direct.id, "c1", "two", reply_to_id=earlier.id),)),
        Post(alice.id, alice.handle, (text(direct.id, "c1", "again"),)),  # same batch, same id
    ]
    result = await b.db.run_write(lambda conn: do_send_messages(conn, posts))
    first, not_member, retried, bad_reply, reply, twice = result.outcomes

    assert isinstance(first, Posted) and first.messages[0].text == "one"
    assert isinstance(not_member, NotFound)
    assert retried == Posted(existing_id=earlier.id)
    assert isinstance(bad_reply, Invalid)
    assert isinstance(reply, Posted) and reply.messages[0].reply_to == earlier.id
    assert twice == Posted(existing_id=first.messages[0].id)
    # Bob's log got both new messages, in id order, and nothing of the failed posts.
    async with b.read() as session:
        frames = await events_after(session, bob.id, 0, 100)
    created = [f for _, f in frames if '"message.created"' in f]
    assert len(created) == 3  # c0 earlier, then one and two
    assert first.messages[0].id < reply.messages[0].id
    assert {e.type for e in result.envelopes} == {"message.created"}


async def test_concurrent_senders_share_transactions_and_everyone_gets_everything(
    b: Backends, make_users
):
    receiver, *senders = await make_users("c", 9)
    chat_ids = [(await chats.create_direct(b, s, receiver.handle))[0].id for s in senders]

    async def burst(i: int) -> list[str]:
        sender, chat_id = senders[i], chat_ids[i]
        sent = []
        for n in range(20):
            view, created = await messages.send_message(
                b, sender, chat_id, client_id=f"{i}-{n}", kind="text", text=f"{i}:{n}"
            )
            assert created
            sent.append(view.id)
        return sent

    async def stranger() -> None:
        with pytest.raises(NotFound):
            await messages.send_message(
                b, senders[0], chat_ids[1], client_id="x", kind="text", text="not mine"
            )

    batches_before, writes_before = batch_totals()
    results = await asyncio.gather(*(burst(i) for i in range(len(senders))), stranger())
    batches, writes = (
        now - then
        for now, then in zip(batch_totals(), (batches_before, writes_before), strict=True)
    )
    assert writes == 8 * 20 + 1 and batches < writes  # group commit: fewer transactions
    sent = {mid for ids in results[:-1] for mid in ids}
    async with b.read() as session:
        frames = await events_after(session, receiver.id, 0, 1000)
    received = [f for _, f in frames if '"message.created"' in f]
    assert len(received) == len(sent) == 8 * 20
    for chat_id in chat_ids:  # each chat's pages, oldest first, have every message in order
        page, _ = await messages.list_messages(b, receiver, chat_id, after="0", limit=200)
        assert [m.text for m in page] == [f"{chat_ids.index(chat_id)}:{n}" for n in range(20)]


def batch_totals() -> tuple[float, float]:
    """(transactions, writes) the write path committed so far in this process."""
    samples = {s.name: s.value for m in WRITE_BATCH_SIZE.collect() for s in m.samples}
    return samples["voxbox_write_batch_size_count"], samples["voxbox_write_batch_size_sum"]


async def test_a_former_member_is_told_so(b: Backends, make_users):
    owner, leaver = await make_users("f", 2)
    group = await chats.create_group(b, owner, "g", [leaver.handle])
    await chats.remove_member(b, leaver, group.id, leaver.handle)
    with pytest.raises(Forbidden):
        await messages.send_message(b, leaver, group.id, client_id="1", kind="text", text="hi")


class BrokenBus:
    """A bus whose publishing fails, as Redis would while it restarts."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.failures = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    async def publish(self, envelope: Envelope) -> None:
        self.failures += 1
        raise ConnectionError("bus down")


async def test_a_failed_publish_after_commit_still_answers_and_keeps_the_message(
    b: Backends, make_users, caplog
):
    alice, bob = await make_users("p", 2)
    direct, _ = await chats.create_direct(b, alice, bob.handle)
    bus = BrokenBus(b.bus)
    b.writes._bus = bus  # type: ignore[assignment]
    _view, created = await messages.send_message(
        b, alice, direct.id, client_id="1", kind="text", text="stored"
    )
    assert created and bus.failures >= 1
    page, _ = await messages.list_messages(b, bob, direct.id)
    assert [m.text for m in page] == ["stored"]
    assert "publishing message.created failed" in caplog.text


async def test_a_caller_who_goes_away_does_not_fail_the_others_of_its_batch(
    b: Backends, make_users
):
    alice, bob, carol = await make_users("g", 3)
    direct, _ = await chats.create_direct(b, alice, bob.handle)
    theirs, _ = await chats.create_direct(b, bob, carol.handle)

    async with b.db.write_gate():  # nothing commits until both are queued
        leaving = asyncio.create_task(  # not her chat: its outcome is an error
            messages.send_message(b, alice, theirs.id, client_id="bad", kind="text", text="no")
        )
        staying = asyncio.create_task(
            messages.send_message(b, alice, direct.id, client_id="ok", kind="text", text="ok")
        )
        while len(b.writes._queue) < 2:  # noqa: ASYNC110 (no event says "n queued")
            await asyncio.sleep(0)  # a turn of the loop, no wall-clock wait
        leaving.cancel()  # the first caller hangs up before the commit

    view, created = await staying
    assert created and view.text == "ok"
    with pytest.raises(asyncio.CancelledError):
        await leaving
