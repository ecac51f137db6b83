"""Pure pieces: sortable ids, event envelopes, the in-process bus, settings, rate windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxbox.config import Registration, load_settings
from voxbox.events.bus import Envelope, InProcessBus
from voxbox.ids import new_id
from voxbox.ratelimit import MemoryRateLimiter


def test_ids_sort_in_creation_order_even_within_a_millisecond() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)


def test_envelope_frames_and_round_trip() -> None:
    env = Envelope("message.created", '{"id":"x"}', (("u1", 7), ("u2", 3)))
    assert json.loads(env.frame(7)) == {"seq": 7, "type": "message.created", "data": {"id": "x"}}
    assert json.loads(env.frame(None)) == {"type": "message.created", "data": {"id": "x"}}
    assert Envelope.decode(env.encode()) == env


async def test_in_process_bus_delivers_each_user_their_own_seq() -> None:
    bus = InProcessBus()
    a, b = bus.subscribe("a", 10), bus.subscribe("b", 10)
    await bus.publish(Envelope("receipt", "{}", (("a", 1), ("b", 9))))
    assert a.queue.get_nowait()[0] == 1
    assert b.queue.get_nowait()[0] == 9
    bus.unsubscribe(a)
    await bus.publish(Envelope("receipt", "{}", (("a", 2),)))
    assert a.queue.empty()


async def test_a_full_subscription_is_marked_overflowed_not_grown() -> None:
    bus = InProcessBus()
    sub = bus.subscribe("a", 10)
    for seq in range(1, 12):
        await bus.publish(Envelope("receipt", "{}", (("a", seq),)))
    assert sub.overflowed
    assert sub.queue.qsize() == 10


async def test_rate_window_counts_and_tells_retry_after() -> None:
    limiter = MemoryRateLimiter()
    counts = [(await limiter.hit("k", 60))[0] for _ in range(3)]
    assert counts == [1, 2, 3]
    count, retry = await limiter.peek("k", 60)
    assert count == 3
    assert 1 <= retry <= 60


def test_settings_env_wins_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "voxbox.toml"
    config.write_text('registration = "closed"\n[limits]\nmax_text_chars = 100\n')
    settings = load_settings(config)
    assert settings.registration is Registration.closed
    assert settings.limits.max_text_chars == 100
    monkeypatch.setenv("VOXBOX_REGISTRATION", "open")
    assert load_settings(config).registration is Registration.open


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'voxbox.db'}"
