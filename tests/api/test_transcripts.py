"""Transcripts, search and the voice inbox, through a running server transcribing with
pocketsphinx: real speech (LibriVox clips) sent as voice notes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from api.test_import import ANDROID, history, run_import, zipped
from support.api import assert_problem, client_id, make_user_on, ok
from support.audio import encode, encode_samples, webm_recording
from support.factory import ServerFactory
from support.server import TRANSCRIBING, ServerProcess
from support.tus import upload

CLIPS = Path(__file__).resolve().parents[1] / "fixtures" / "librivox"


@pytest.fixture(scope="module")
def speaking(server_factory: ServerFactory) -> ServerProcess:
    """The module's server, transcribing."""
    return server_factory.start(env=TRANSCRIBING)


def send_clip(user: Any, chat_id: str, clip: str, **extra: Any) -> dict[str, Any]:
    uid = upload(user.http, (CLIPS / f"{clip}.flac").read_bytes(), filename=f"{clip}.flac")
    body = {"client_id": client_id(), "kind": "voice", "upload_id": uid, **extra}
    return ok(user.http.post(f"/chats/{chat_id}/messages", json=body), 201)


def transcript_of(user: Any, message_id: str, timeout: float = 60) -> dict[str, Any]:
    """The message's transcript once it is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        transcript = ok(user.http.get(f"/messages/{message_id}"))["transcript"]
        if transcript["state"] != "pending" or time.monotonic() > deadline:
            return transcript
        time.sleep(0.2)


def hits(user: Any, q: str, **params: Any) -> list[dict[str, Any]]:
    return ok(user.http.get("/search", params={"q": q, **params}))["results"]


async def test_a_spoken_clip_gets_a_transcript_and_is_found_by_a_word_only_said(
    speaking: ServerProcess,
) -> None:
    alice = make_user_on(speaking, prefix="alice")
    bob = make_user_on(speaking, prefix="bob")
    chat_id = alice.direct_with(bob)
    async with bob.events(after=bob.latest_seq()) as ev:
        sent = send_clip(alice, chat_id, "0870")
        assert sent["transcript"]["state"] == "pending"
        updated = await ev.next_event(
            "message.updated", where=lambda e: e["data"]["id"] == sent["id"], timeout=60
        )
    transcript = updated["data"]["transcript"]
    assert transcript["state"] == "ready", transcript
    # "and mister john dashwood had then leisure to consider how much there might be prudently
    # in his power to do for them"
    said = transcript["text"].split()
    for word in ("john", "leisure", "consider", "power"):
        assert word in said
    assert transcript["language"] == "en"
    assert [w["w"] for w in transcript["words"]] == said
    assert ok(alice.http.get(f"/messages/{sent['id']}"))["transcript"] == transcript

    # Found by a word nobody typed, with the time it is said.
    [hit] = hits(bob, "leisure")
    assert hit["message_id"] == sent["id"] and hit["kind"] == "voice"
    assert hit["sender"] == alice.handle
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "leisure"
    leisure = next(w for w in transcript["words"] if w["w"] == "leisure")
    assert leisure["start_ms"] <= hit["offset_ms"] < leisure["end_ms"]
    # Two words, a prefix, any case; filters.
    assert [h["message_id"] for h in hits(alice, "JOHN Consid")] == [sent["id"]]
    assert hits(alice, "leisure", kind="text") == []
    assert hits(alice, "leisure", chat_id=alice.self_chat()["id"]) == []
    assert hits(alice, "leisure", before="2000-01-01T00:00:00Z") == []


def test_search_finds_only_what_the_caller_may_see(speaking: ServerProcess) -> None:
    alice = make_user_on(speaking, prefix="alice")
    bob = make_user_on(speaking, prefix="bob")
    eve = make_user_on(speaking, prefix="eve")
    chat_id = alice.direct_with(bob)
    kept = alice.send(chat_id, "The address is 12 Quillfeather Lane")
    gone = alice.send(chat_id, "Quillfeather again, deleted")
    hidden = alice.send(chat_id, "Quillfeather hidden for bob")
    ok(alice.http.delete(f"/messages/{gone['id']}", params={"scope": "everyone"}), 204)
    ok(bob.http.delete(f"/messages/{hidden['id']}", params={"scope": "me"}), 204)
    eve.send(eve.direct_with(alice), "Quillfeather from eve")

    found = hits(bob, "quillfeather")
    assert [h["message_id"] for h in found] == [kept["id"]]
    assert found[0]["snippet"] == "The address is 12 Quillfeather Lane"
    assert found[0]["highlights"] == [[18, 30]] and found[0]["offset_ms"] is None
    assert len(hits(alice, "quillfeather")) == 3  # her own hidden-for-bob one, and eve's
    assert [h["sender"] for h in hits(eve, "quillfeather")] == [eve.handle]

    # A view-once voice note is never transcribed, nor found.
    view_once = send_clip(alice, chat_id, "0880", view_once=True)
    assert view_once["transcript"] == {
        "state": "off", "text": None, "language": None, "words": [], "error": None
    }  # fmt: skip
    assert ok(bob.http.get(f"/messages/{view_once['id']}"))["transcript"]["state"] == "off"


def test_bad_searches_are_clear_422s(speaking: ServerProcess) -> None:
    alice = make_user_on(speaking, prefix="alice")
    for q in ("", "   ", "?!", "x" * 201, " ".join(f"w{i}" for i in range(9))):
        assert_problem(alice.http.get("/search", params={"q": q}), 422)
    assert_problem(alice.http.get("/search", params={"q": "a", "limit": 0}), 422)
    assert_problem(alice.http.get("/search", params={"q": "a", "kind": "video"}), 422)
    # FTS syntax is words like any other.
    assert hits(alice, 'NEAR("a" OR b*) AND -"') == []


def test_a_sender_who_turned_transcription_off_gets_none(speaking: ServerProcess) -> None:
    alice = make_user_on(speaking, prefix="alice")
    bob = make_user_on(speaking, prefix="bob")
    assert alice.me()["transcribe"] is True
    assert ok(alice.http.patch("/me", json={"transcribe": False}))["transcribe"] is False
    assert alice.me()["transcribe"] is False
    assert_problem(alice.http.patch("/me", json={"transcribe": "no"}), 422)
    sent = send_clip(alice, alice.direct_with(bob), "0890")
    assert sent["transcript"]["state"] == "off"
    assert ok(bob.http.get(f"/messages/{sent['id']}"))["transcript"]["state"] == "off"
    assert hits(bob, "the") == []


def test_the_inbox_lists_unplayed_voice_notes_oldest_first(speaking: ServerProcess) -> None:
    me = make_user_on(speaking, prefix="me")
    ann = make_user_on(speaking, prefix="ann")
    ben = make_user_on(speaking, prefix="ben")
    with_ann, with_ben = me.direct_with(ann), me.direct_with(ben)
    note = webm_recording(1)

    def voice(user: Any, chat_id: str, **extra: Any) -> dict[str, Any]:
        uid = upload(user.http, note, filename="note.webm")
        body = {"client_id": client_id(), "kind": "voice", "upload_id": uid, **extra}
        return ok(user.http.post(f"/chats/{chat_id}/messages", json=body), 201)

    first = voice(ann, with_ann)
    second = voice(ben, with_ben)
    mine = voice(me, with_ann)  # not in my inbox: in ann's
    ann.send(with_ann, "text is not in the inbox")
    voice(ann, with_ann, view_once=True)  # opened on purpose, not by a queue
    third = voice(ann, with_ann)
    inbox = ok(me.http.get("/inbox"))["messages"]
    assert [m["id"] for m in inbox] == [first["id"], second["id"], third["id"]]
    ok(me.http.post(f"/messages/{second['id']}/played"), 204)
    assert [m["id"] for m in ok(me.http.get("/inbox"))["messages"]] == [first["id"], third["id"]]
    assert [m["id"] for m in ok(me.http.get("/inbox", params={"limit": 1}))["messages"]] == [
        first["id"]
    ]
    assert [m["id"] for m in ok(ann.http.get("/inbox"))["messages"]] == [mine["id"]]


def send_file(user: Any, chat_id: str, data: bytes, filename: str) -> dict[str, Any]:
    uid = upload(user.http, data, filename=filename)
    body = {"client_id": client_id(), "kind": "audio", "upload_id": uid}
    return ok(user.http.post(f"/chats/{chat_id}/messages", json=body), 201)


def test_audio_with_nothing_said_gets_an_empty_transcript(speaking: ServerProcess) -> None:
    alice = make_user_on(speaking, prefix="alice")
    tone = send_file(alice, alice.self_chat()["id"], encode(3, "ogg", "libopus"), "tone.ogg")
    assert transcript_of(alice, tone["id"]) == {
        "state": "ready", "text": "", "language": "en", "words": [], "error": None
    }  # fmt: skip


def silence_ogg(seconds: int) -> bytes:
    """``seconds`` of near silence as Ogg/Opus, made in a moment: one 60 ms Opus packet of it,
    muxed over and over (each packet decodes on its own)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=16_000, layout="mono")
        stream.options = {"frame_duration": "60"}
        stream.bit_rate = 6000
        stream.codec_context.open()
        size = stream.codec_context.frame_size
        hum = (np.sin(np.arange(size) * 0.1) * 0.001).astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(hum, format="flt", layout="mono")
        frame.sample_rate = 16_000
        packets: list[av.Packet] = []
        encoded = 0
        while len(packets) < 3:  # past the encoder's start
            frame.pts, encoded = encoded, encoded + size
            packets += stream.encode(frame)
        model = packets[-1]
        payload, step, time_base = bytes(model), model.duration, model.time_base
        assert step and time_base
        for i in range(int(seconds / (step * time_base))):
            packet = av.Packet(payload)
            packet.stream, packet.time_base = stream, time_base
            packet.pts = packet.dts = i * step
            packet.duration = step
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_broken_engine_and_a_file_too_long_fail_clearly_once_each(
    make_server: Any, tmp_path: Path
) -> None:
    # A model directory laid out like pocketsphinx's, holding garbage: pocketsphinx crashes on
    # it (in the transcription process, not the server's).
    model = tmp_path / "model"
    (model / "en-us").mkdir(parents=True)
    for name in ("en-us/mdef", "en-us/means", "en-us.lm.bin", "cmudict-en-us.dict"):
        (model / name).write_bytes(b"\x00garbage" * 100)
    server = make_server(
        transcribe__engine="pocketsphinx",
        transcribe__model_dir=str(model),
        transcribe__max_seconds="1800",
    )
    alice = make_user_on(server, prefix="alice")
    chat_id = alice.self_chat()["id"]
    broken = [send_clip(alice, chat_id, clip) for clip in ("0870", "0880")]
    for sent in broken:
        transcript = transcript_of(alice, sent["id"])
        assert transcript["state"] == "failed", transcript
        # pocketsphinx crashes on it (or, were it to raise, could not start): said either way.
        assert transcript["error"].startswith("The transcription engine "), transcript
        assert transcript["text"] is None and transcript["words"] == []
    long = send_file(alice, chat_id, silence_ogg(60 * 60), "an hour.ogg")
    transcript = transcript_of(alice, long["id"], timeout=120)
    assert transcript["state"] == "failed"
    assert transcript["error"] == "Longer than 30 minutes: not transcribed."
    # Each failure ran once and was not retried: one warning per broken transcript.
    log = server.log_path.read_text()
    assert log.count("transcribing media") == len(broken), log[-3000:]


def test_a_missing_model_stops_the_server_at_start_up(tmp_path: Path) -> None:
    for engine, needed in (("faster-whisper", "model.bin"), ("pocketsphinx", "is not a directory")):
        done = subprocess.run(
            [sys.executable, "-m", "voxbox", "serve", "--port", "1"],
            env={
                **os.environ,
                "VOXBOX_DATA_DIR": str(tmp_path),
                "VOXBOX_TRANSCRIBE__ENGINE": engine,
                "VOXBOX_TRANSCRIBE__MODEL_DIR": str(tmp_path / "no-model"),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert needed in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_an_imported_voice_note_gets_a_transcript_too(speaking: ServerProcess) -> None:
    me = make_user_on(speaking, prefix="me")
    # "had he married a more amiable woman he might have been made still more respectable than
    # he was", as a WhatsApp voice note (Ogg/Opus).
    voice = encode_samples(decode_mono(CLIPS / "0920.flac"), "ogg", "libopus", rate=16_000)
    task = run_import(
        me, zipped({"WhatsApp Chat with Mum.txt": ANDROID, "PTT-20261125-WA0003.opus": voice}),
        "Chat.zip", timezone="Europe/London",
    )  # fmt: skip
    [note] = [m for m in history(me, task["chat_id"]) if m["kind"] == "voice"]
    transcript = transcript_of(me, note["id"])
    assert transcript["state"] == "ready" and transcript["text"], transcript
    assert [h["message_id"] for h in hits(me, transcript["words"][-1]["w"])] == [note["id"]]


def decode_mono(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:  # 16-bit FLAC
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    return pcm.astype(np.float32) / 32768


def test_with_the_engine_off_voice_is_off_and_texts_are_still_found(make_user: Any) -> None:
    alice, bob = make_user(), make_user()  # the session's server: VOXBOX_TRANSCRIBE__ENGINE=off
    chat_id = alice.direct_with(bob)
    uid = upload(alice.http, webm_recording(1), filename="note.webm")
    body = {"client_id": client_id(), "kind": "voice", "upload_id": uid}
    voice = ok(alice.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    assert voice["transcript"]["state"] == "off"
    assert ok(bob.http.get(f"/messages/{voice['id']}"))["transcript"]["state"] == "off"
    text = alice.send(chat_id, "Bring the umbrella")
    assert text["transcript"] is None
    assert [h["message_id"] for h in hits(bob, "umbrel")] == [text["id"]]


def test_search_folds_accents_pages_and_keeps_single_letters_whole(speaking: ServerProcess) -> None:
    alice = make_user_on(speaking, prefix="alice")
    chat_id = alice.self_chat()["id"]
    cafe = alice.send(chat_id, "Meet at the Café Olé 👍👍 at noon")
    for q in ("cafe", "café", "CAFÉ", "ole caf"):
        assert [h["message_id"] for h in hits(alice, q)] == [cafe["id"]], q
    [hit] = hits(alice, "noon")
    # Highlights count characters (code points), emoji too.
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "noon"
    # A single letter is a word of its own, not the start of every word.
    assert hits(alice, "a") == []
    plan = alice.send(chat_id, "plan a")
    assert [h["message_id"] for h in hits(alice, "a")] == [plan["id"]]
    # Pages: offset plus limit while has_more, no hit twice.
    sent = {alice.send(chat_id, f"zebra number {i}")["id"] for i in range(3)}
    first = ok(alice.http.get("/search", params={"q": "zebra", "limit": 2}))
    second = ok(alice.http.get("/search", params={"q": "zebra", "limit": 2, "offset": 2}))
    assert first["has_more"] is True and second["has_more"] is False
    seen = [h["message_id"] for h in first["results"] + second["results"]]
    assert sorted(seen) == sorted(sent)


async def test_transcripts_reach_only_those_who_may_see_the_message(
    speaking: ServerProcess,
) -> None:
    alice = make_user_on(speaking, prefix="alice")
    bob = make_user_on(speaking, prefix="bob")
    carol = make_user_on(speaking, prefix="carol")
    group = alice.group("Readers", bob)
    async with alice.events(after=alice.latest_seq()) as ev:
        sent = send_clip(alice, group, "0880")
        ok(bob.http.delete(f"/messages/{sent['id']}", params={"scope": "me"}), 204)
        ok(alice.http.post(f"/chats/{group}/members", json={"handle": carol.handle}))
        updated = await ev.next_event(
            "message.updated", where=lambda e: e["data"]["id"] == sent["id"], timeout=60
        )
    said = updated["data"]["transcript"]["words"][-1]["w"]
    for other in (bob, carol):  # hid it; joined after it
        log = ok(other.http.get("/events", params={"after": 0, "timeout": 0}))["events"]
        told = [e for e in log if e["type"] == "message.updated" and e["data"]["transcript"]]
        assert not [e for e in told if e["data"]["transcript"]["state"] == "ready"], told
        assert hits(other, said) == []
    assert [h["message_id"] for h in hits(alice, said)] == [sent["id"]]
    # Deleted for everyone: found no more.
    ok(alice.http.delete(f"/messages/{sent['id']}", params={"scope": "everyone"}), 204)
    assert hits(alice, said) == []


def test_a_view_once_note_is_not_transcribed_even_when_asked_for_by_its_media(
    speaking: ServerProcess,
) -> None:
    alice = make_user_on(speaking, prefix="alice")
    bob = make_user_on(speaking, prefix="bob")
    chat_id = alice.direct_with(bob)
    ok(alice.http.patch("/me", json={"transcribe": True}))
    once = send_clip(alice, chat_id, "0930", view_once=True)
    # Bob tries to post it again by its media id: refused, and nothing is transcribed.
    body = {"client_id": client_id(), "kind": "voice", "media_id": once["media"]["id"]}
    assert_problem(bob.http.post(f"/chats/{bob.self_chat()['id']}/messages", json=body), 422)
    assert ok(alice.http.get(f"/messages/{once['id']}"))["transcript"]["state"] == "off"
    reference = (CLIPS / "0930.txt").read_text().split()
    assert all(hits(alice, word) == [] for word in reference if len(word) > 3)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_searches_are_rate_limited(make_server: Any) -> None:
    server = make_server(limits__searches_per_minute="2")
    alice = make_user_on(server, prefix="alice")
    for _ in range(2):
        hits(alice, "anything")
    r = alice.http.get("/search", params={"q": "anything"})
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
