"""User-supplied bytes never run as a document of the app's origin.

Media and drafts are served with a type from an allow-list of audio and video types (from the
probed bytes, never the declared type), else `application/octet-stream` as an attachment, and
always with `nosniff` and a sandbox CSP.
"""

from __future__ import annotations

import pytest

from support.api import assert_problem, client_id, ok
from support.audio import encode, webm_recording
from support.tus import upload

SANDBOX_CSP = "sandbox; default-src 'none'"
SCRIPT = b"<html><script>alert(document.cookie)</script></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
    b"<script>alert(document.cookie)</script></svg>"
)


def assert_sandboxed(r) -> None:
    assert r.headers.get("x-content-type-options") == "nosniff", dict(r.headers)
    assert r.headers.get("content-security-policy") == SANDBOX_CSP, dict(r.headers)


def post_audio(user, chat_id: str, data: bytes, filename: str, content_type: str) -> dict:
    uid = upload(user.http, data, filename=filename, content_type=content_type)
    r = user.http.post(
        f"/chats/{chat_id}/messages",
        json={"client_id": client_id(), "kind": "audio", "upload_id": uid},
    )
    return ok(r, 201)["media"]


def test_adts_with_script_declared_text_html_is_served_as_audio_aac(make_user) -> None:
    """The probe's reproduction: ADTS + <script>, declared text/html, named x.html."""
    alice, bob = make_user(), make_user()
    chat_id = alice.direct_with(bob)
    data = encode(1, "adts", "aac") + SCRIPT
    media = post_audio(alice, chat_id, data, "x.html", "text/html")
    assert media["content_type"] == "audio/aac"
    assert ok(bob.http.get(f"/media/{media['id']}"))["content_type"] == "audio/aac"
    for who in (alice, bob):
        r = who.http.get(f"/media/{media['id']}/content", params={"format": "original"})
        assert r.status_code == 200
        assert r.content == data
        assert r.headers["content-type"] == "audio/aac"
        assert "text/html" not in r.headers["content-type"]
        assert_sandboxed(r)


@pytest.mark.parametrize(
    ("container", "codec", "expected"),
    [
        ("aiff", "pcm_s16be", "audio/aiff"),
        ("au", "pcm_s16be", "audio/basic"),
        ("mp3", "libmp3lame", "audio/mpeg"),
        ("ipod", "aac", "audio/mp4"),
    ],
)
def test_the_type_comes_from_the_bytes_not_the_declaration(
    make_user, container: str, codec: str, expected: str
) -> None:
    alice = make_user()
    chat_id = alice.self_chat()["id"]
    media = post_audio(alice, chat_id, encode(1, container, codec), "x.svg", "image/svg+xml")
    assert media["content_type"] == expected
    r = alice.http.get(f"/media/{media['id']}/content")
    assert r.headers["content-type"] == expected
    assert r.headers["content-disposition"].startswith("inline;")
    assert_sandboxed(r)


def test_a_container_outside_the_allow_list_is_an_octet_stream_attachment(make_user) -> None:
    alice = make_user()
    chat_id = alice.self_chat()["id"]
    media = post_audio(alice, chat_id, encode(1, "voc", "pcm_u8"), "x.html", "text/html")
    assert media["content_type"] == "application/octet-stream"
    r = alice.http.get(f"/media/{media['id']}/content")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert_sandboxed(r)
    # The renditions we make are ours, and fine inline.
    ogg = alice.http.get(f"/media/{media['id']}/content", params={"format": "ogg"})
    assert ogg.headers["content-type"].startswith("audio/ogg")
    assert ogg.headers["content-disposition"].startswith("inline;")
    assert_sandboxed(ogg)


def test_every_media_response_is_sandboxed_206_304_416_and_renditions(make_user) -> None:
    alice = make_user()
    chat_id = alice.self_chat()["id"]
    uid = upload(alice.http, webm_recording(1), content_type="text/html", kind="voice")
    message = ok(
        alice.http.post(
            f"/chats/{chat_id}/messages",
            json={"client_id": client_id(), "kind": "voice", "upload_id": uid},
        ),
        201,
    )
    url = f"/media/{message['media']['id']}/content"
    whole = alice.http.get(url)
    assert whole.headers["content-type"] == "audio/ogg; codecs=opus"
    size = len(whole.content)
    responses = {
        200: whole,
        206: alice.http.get(url, headers={"Range": "bytes=0-9"}),
        304: alice.http.get(url, headers={"If-None-Match": whole.headers["etag"]}),
        416: alice.http.get(url, headers={"Range": f"bytes={size}-"}),
    }
    for status, r in responses.items():
        assert r.status_code == status, (status, r.text)
        assert_sandboxed(r)
    mp3 = alice.http.get(url, params={"format": "mp3"})
    assert mp3.headers["content-type"] == "audio/mpeg"
    assert_sandboxed(mp3)


@pytest.mark.parametrize("declared", ["text/html", "image/svg+xml", "text/html; charset=utf-8"])
def test_a_draft_declared_as_a_document_is_an_octet_stream_attachment(
    make_user, declared: str
) -> None:
    alice = make_user()
    uid = upload(alice.http, SVG, filename="x.svg", content_type=declared)
    r = alice.http.get(f"/uploads/{uid}/content")
    assert r.status_code == 200
    assert r.content == SVG
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert_sandboxed(r)


def test_an_svg_declared_as_audio_is_never_served_as_svg_and_is_refused(make_user) -> None:
    alice = make_user()
    uid = upload(alice.http, SVG, filename="x.svg", content_type="audio/mpeg", kind="audio")
    draft = alice.http.get(f"/uploads/{uid}/content")
    assert draft.headers["content-type"] == "audio/mpeg"  # inert: not sniffed, sandboxed
    assert_sandboxed(draft)
    assert_problem(alice.http.post(f"/uploads/{uid}/finish", json={"kind": "audio"}), 415)


def test_a_recording_draft_keeps_its_audio_type(make_user) -> None:
    alice = make_user()
    uid = upload(alice.http, webm_recording(1), content_type="audio/webm;codecs=opus", kind="voice")
    r = alice.http.get(f"/uploads/{uid}/content")
    assert r.headers["content-type"] == "audio/webm"
    assert r.headers["content-disposition"].startswith("inline;")
    assert_sandboxed(r)
