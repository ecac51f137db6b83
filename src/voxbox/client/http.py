"""A synchronous client of the voxbox HTTP API (``/api/v1``), over httpx.

Every method returns the response JSON as plain dicts (``None`` for ``204``) and raises
:class:`VoxboxAPIError` for any non-2xx answer. Transport failures (connection refused,
timeouts) are raised as the underlying ``httpx.HTTPError``.

The tus upload and media download methods here are single requests; resuming, chunking and
retrying live in :mod:`voxbox.client.uploads`, which ``upload_file``, ``send_file`` and
``download_media`` delegate to.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal
from urllib.parse import quote, urljoin, urlsplit

import httpx

API_PREFIX = "/api/v1"
TUS_VERSION = "1.0.0"
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
# Finishing an upload decodes and encodes the audio inside the request: give it time.
PROCESSING_TIMEOUT = 600.0

MediaFormat = Literal["original", "ogg", "mp3"]
MessageKind = Literal["voice", "audio"]
ProgressCallback = Callable[[int, int | None], None]

# Codes the contract assigns to statuses; used when a response carries no problem JSON
# (e.g. a reverse proxy's own error page).
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "invalid",
    429: "rate_limited",
}


class VoxboxError(Exception):
    """Anything the client reports to a user: a short ``title`` and an optional ``detail``."""

    def __init__(self, title: str, detail: str = "") -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.title = title
        self.detail = detail


class VoxboxAPIError(VoxboxError):
    """The server answered with a non-2xx status (an RFC 9457 problem, when it sent one).

    ``retry_after`` is the ``Retry-After`` delay in seconds when the server gave one.
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(title, detail)
        self.status = status
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status} {super().__str__()}"


def problem_error(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes,
) -> VoxboxAPIError:
    """Build the error for a non-2xx answer from its status, reason phrase, headers and body.

    Problem JSON fields win; a body that is not a JSON object falls back to the reason phrase
    and, for ``text/plain`` bodies only, the text itself (HTML error pages are noise).
    """
    content_type = headers.get("content-type", "")
    problem: Any = None
    with contextlib.suppress(ValueError):  # not JSON: handled like any non-object below
        problem = json.loads(body)
    detail = ""
    if not isinstance(problem, dict):
        problem = {}
        if content_type.startswith("text/plain"):
            detail = body.decode("utf-8", "replace").strip()[:500]
        elif status not in (502, 503, 504):  # not a proxy's "the server is down" page
            # voxbox answers every error with problem JSON: this came from something else.
            detail = "this answer is not from voxbox: is this the address of a voxbox server?"
    title = problem.get("title")
    code = problem.get("code")
    problem_detail = problem.get("detail")
    return VoxboxAPIError(
        status=status,
        code=code if isinstance(code, str) and code else DEFAULT_CODES.get(status, "error"),
        title=title if isinstance(title, str) and title else (reason or f"HTTP {status}"),
        detail=problem_detail if isinstance(problem_detail, str) else detail,
        retry_after=_retry_after(headers.get("retry-after")),
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), if valid."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _segment(value: str) -> str:
    """Quote a user-supplied path segment so it can never change the request path."""
    return quote(value, safe="")


def encode_upload_metadata(metadata: Mapping[str, str]) -> str:
    """The tus ``Upload-Metadata`` header: ``key base64(value)`` pairs, comma-separated."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}"
        for key, value in metadata.items()
    )


def upload_id_of(upload_url: str) -> str:
    """The upload id at the end of an upload URL (``.../uploads/{id}``)."""
    return upload_url.rstrip("/").rsplit("/", 1)[-1]


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise VoxboxError("Unexpected response", f"{name}: {value!r} is not a byte count")
    return int(value)


class VoxboxClient:
    """A client of one voxbox server.

    ``base_url`` is the server root (``http://127.0.0.1:8080``); the API prefix is added here.
    ``token`` is sent as a Bearer token; :meth:`register` and :meth:`login` set it and
    :meth:`logout` clears it, so one client can log in and then act. Use as a context manager
    (or call :meth:`close`) to release the connection pool.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX, timeout=timeout, transport=transport
        )

    def __enter__(self) -> VoxboxClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    # -- plumbing -------------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return headers | dict(extra or {})

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int | None] | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
    ) -> httpx.Response:
        # httpx would send a None parameter as an empty value; absent means "not given".
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._http.request(
            method,
            path,
            json=body,
            content=content,
            params=query,
            headers=self._headers(headers),
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        if response.is_error:
            raise problem_error(
                response.status_code, response.reason_phrase, response.headers, response.content
            )
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data = self._request(method, path, **kwargs).json()
        if not isinstance(data, dict):
            raise VoxboxError("Unexpected response", f"{method} {path} did not return an object")
        return data

    def _empty(self, method: str, path: str, **kwargs: Any) -> None:
        self._request(method, path, **kwargs)

    # -- accounts -------------------------------------------------------------------------

    def register(
        self,
        handle: str,
        password: str,
        display_name: str | None = None,
        invite: str | None = None,
    ) -> dict[str, Any]:
        """Create an account; returns ``{user, token}`` and uses the new token from now on."""
        body: dict[str, Any] = {"handle": handle, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        if invite is not None:
            body["invite"] = invite
        data = self._json("POST", "/auth/register", body=body)
        self.token = data["token"]
        return data

    def login(self, handle: str, password: str) -> dict[str, Any]:
        """Log in; returns ``{user, token}`` and uses the new token from now on."""
        data = self._json("POST", "/auth/login", body={"handle": handle, "password": password})
        self.token = data["token"]
        return data

    def logout(self) -> None:
        """Revoke the current token on the server and forget it."""
        self._empty("POST", "/auth/logout")
        self.token = None

    def me(self) -> dict[str, Any]:
        """The caller's user object, with ``is_admin``, ``storage`` (bytes used, quota, open
        uploads) and ``transcribe`` (whether the messages they send get transcripts)."""
        return self._json("GET", "/me")

    def update_me(self, *, transcribe: bool | None = None) -> dict[str, Any]:
        """Change the caller's choices; returns the caller's user object as :meth:`me` does.

        ``transcribe``: whether the voice and audio messages the caller sends from now on get a
        transcript (those sent before keep theirs). ``None`` leaves a choice as it is.
        """
        body = {"transcribe": transcribe} if transcribe is not None else {}
        return self._json("PATCH", "/me", body=body)

    def user(self, handle: str) -> dict[str, Any]:
        """The user with this handle."""
        return self._json("GET", f"/users/{_segment(handle)}")

    def create_invite(self) -> dict[str, Any]:
        """A new invite code ``{code, expires_at}`` (admins only)."""
        return self._json("POST", "/invites")

    # -- chats ----------------------------------------------------------------------------

    def chats(self) -> dict[str, Any]:
        """``{chats: [chat]}``, newest activity first, the self chat included."""
        return self._json("GET", "/chats")

    def chat(self, chat_id: str) -> dict[str, Any]:
        """One chat the caller can see."""
        return self._json("GET", f"/chats/{_segment(chat_id)}")

    def create_direct(self, handle: str) -> dict[str, Any]:
        """The direct chat with ``handle``, created unless it exists already."""
        return self._json("POST", "/chats", body={"kind": "direct", "handle": handle})

    def create_group(self, title: str, handles: list[str]) -> dict[str, Any]:
        """A new group chat with these members; the caller becomes its admin."""
        return self._json(
            "POST", "/chats", body={"kind": "group", "title": title, "handles": handles}
        )

    def add_member(self, chat_id: str, handle: str) -> dict[str, Any]:
        """Add ``handle`` to a group (caller must be a group admin); returns the chat."""
        return self._json("POST", f"/chats/{_segment(chat_id)}/members", body={"handle": handle})

    def remove_member(self, chat_id: str, handle: str) -> None:
        """Remove ``handle`` from a group (admin), or leave it (``handle`` is the caller)."""
        self._empty("DELETE", f"/chats/{_segment(chat_id)}/members/{_segment(handle)}")

    # -- messages -------------------------------------------------------------------------

    def send_text(
        self,
        chat_id: str,
        text: str,
        client_id: str | None = None,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """Post a text message; returns the message.

        Sending again with the same ``client_id`` returns the first message instead of a
        duplicate, so a caller that retries after a lost response should reuse it.
        """
        body: dict[str, Any] = {
            "client_id": client_id or uuid.uuid4().hex,
            "kind": "text",
            "text": text,
        }
        if reply_to is not None:
            body["reply_to"] = reply_to
        return self._json("POST", f"/chats/{_segment(chat_id)}/messages", body=body)

    def messages(
        self,
        chat_id: str,
        before: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """A page ``{messages (oldest first), has_more}`` of a chat's history."""
        return self._json(
            "GET",
            f"/chats/{_segment(chat_id)}/messages",
            params={"before": before, "after": after, "limit": limit},
        )

    def delete_message(self, message_id: str, scope: Literal["me", "everyone"]) -> None:
        """Delete a message for the caller only, or for everyone (sender only)."""
        self._empty("DELETE", f"/messages/{_segment(message_id)}", params={"scope": scope})

    def forward(self, message_id: str, chat_ids: list[str]) -> dict[str, Any]:
        """Forward a message to up to 5 chats; returns ``{messages}``, one per chat."""
        return self._json(
            "POST", f"/messages/{_segment(message_id)}/forward", body={"chat_ids": chat_ids}
        )

    def star(self, message_id: str) -> None:
        """Star a message for the caller."""
        self._empty("PUT", f"/messages/{_segment(message_id)}/star")

    def unstar(self, message_id: str) -> None:
        """Remove the caller's star from a message."""
        self._empty("DELETE", f"/messages/{_segment(message_id)}/star")

    def starred(self) -> dict[str, Any]:
        """``{messages}``: the messages the caller starred."""
        return self._json("GET", "/starred")

    def read(self, chat_id: str, up_to: str) -> None:
        """Mark a chat read up to and including message ``up_to``."""
        self._empty("POST", f"/chats/{_segment(chat_id)}/read", body={"up_to": up_to})

    def played(self, message_id: str) -> None:
        """Record that the caller played a voice message."""
        self._empty("POST", f"/messages/{_segment(message_id)}/played")

    def search(
        self,
        q: str,
        *,
        chat_id: str | None = None,
        kind: Literal["text", "voice", "audio"] | None = None,
        before: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """``{results, has_more}``: the texts and transcripts the caller may see that hold every
        word of ``q`` (each as the start of a word, any case), best match first.

        Each result is ``{message_id, chat_id, kind, sender, sender_name, snippet, highlights,
        offset_ms, created_at}``: ``snippet`` is plain text around the match and ``highlights``
        the ``[start, end)`` character ranges of the matched words in it; ``offset_ms`` is where
        the first matched word is said in a voice or audio message (``None`` for a text).
        ``before`` is an ISO 8601 time: only messages sent before it. ``limit`` is at most the
        server's ``limits.search_results_max`` (50 by default). Raises :class:`VoxboxAPIError`
        422 for a query with no word or too many.
        """
        return self._json(
            "GET",
            "/search",
            params={"q": q, "chat_id": chat_id, "kind": kind, "before": before, "limit": limit},
        )

    def inbox(self, limit: int | None = None) -> dict[str, Any]:
        """``{messages}``: the voice messages others sent the caller that the caller has not
        played yet, across chats, oldest first (view-once ones and those still processing
        left out)."""
        return self._json("GET", "/inbox", params={"limit": limit})

    def message(self, message_id: str) -> dict[str, Any]:
        """One message the caller can see (``media`` is ``null`` once a view-once was played)."""
        return self._json("GET", f"/messages/{_segment(message_id)}")

    def message_receipts(self, message_id: str) -> dict[str, Any]:
        """``{receipts: [{handle, display_name, delivered_at, read_at, played_at}]}``: the
        "Message info" of one's own message, a time or ``null`` per member it was sent to."""
        return self._json("GET", f"/messages/{_segment(message_id)}/receipts")

    def email_message(self, message_id: str, to: str, note: str | None = None) -> dict[str, Any]:
        """Email a voice or audio message (with an MP3 copy) to ``to``; ``{to}`` once the mail
        server took it. Raises :class:`VoxboxAPIError` 422 (bad address, not audio), 429 (too
        many), 502 (the mail server refused it) or 503 (email is off on this server)."""
        body = {"to": to, **({"note": note} if note else {})}
        return self._json(
            "POST", f"/messages/{_segment(message_id)}/email", body=body, timeout=PROCESSING_TIMEOUT
        )

    # -- keeping: backups and imports -----------------------------------------------------

    def create_backup(self, passphrase: str) -> dict[str, Any]:
        """Start a backup of everything this user has; the task ``{id, state, progress ...}``."""
        return self._json("POST", "/backups", body={"passphrase": passphrase})

    def task(self, kind: Literal["backup", "restore", "import"], task_id: str) -> dict[str, Any]:
        """A backup's, restore's or import's task as it stands."""
        base = {"backup": "/backups", "restore": "/backups/restore", "import": "/imports"}[kind]
        return self._json("GET", f"{base}/{_segment(task_id)}")

    @contextlib.contextmanager
    def stream_backup(self, backup_id: str) -> Iterator[httpx.Response]:
        """The streamed response of ``GET /backups/{id}/download`` (an age file)."""
        with self._stream(
            f"/backups/{_segment(backup_id)}/download",
            params={},
            timeout=httpx.Timeout(60.0, read=None),
        ) as response:
            yield response

    def restore_backup(self, file: Path, passphrase: str) -> dict[str, Any]:
        """Upload a backup to restore into this account; its task. A wrong passphrase raises
        :class:`VoxboxAPIError` 422 at once."""
        with file.open("rb") as f:
            return self._multipart("/backups/restore", {"passphrase": passphrase}, f, file.name)

    def import_chat(
        self, file: Path, *, mapping: Mapping[str, str] | None = None, timezone: str = "UTC"
    ) -> dict[str, Any]:
        """Upload another app's chat export (a WhatsApp zip or txt, a Telegram result.json or
        zip) to import; its task."""
        fields = {"timezone": timezone, **({"mapping": json.dumps(mapping)} if mapping else {})}
        with file.open("rb") as f:
            return self._multipart("/imports", fields, f, file.name)

    def _multipart(
        self, path: str, fields: Mapping[str, str], file: IO[bytes], filename: str
    ) -> dict[str, Any]:
        response = self._http.post(
            path,
            data=dict(fields),
            files={"file": (filename, file, "application/octet-stream")},
            headers=self._headers(),
            timeout=httpx.Timeout(60.0, write=None),
        )
        if response.is_error:
            raise problem_error(
                response.status_code, response.reason_phrase, response.headers, response.content
            )
        data = response.json()
        assert isinstance(data, dict)
        return data

    def send_upload(
        self,
        chat_id: str,
        upload_id: str,
        *,
        kind: MessageKind,
        client_id: str,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """Finish a complete (or deferred-length) upload, process it and post it as a voice or
        audio message; returns the message.

        Like :meth:`send_text`, the same ``client_id`` again returns the first message, so a
        caller that lost the answer (or was interrupted) can safely repeat the call.
        Raises :class:`VoxboxAPIError` 415 (not audio), 422 (empty, corrupt, no audio track)
        or 413 (too long or too big).
        """
        body: dict[str, Any] = {"client_id": client_id, "kind": kind, "upload_id": upload_id}
        if reply_to is not None:
            body["reply_to"] = reply_to
        return self._json(
            "POST",
            f"/chats/{_segment(chat_id)}/messages",
            body=body,
            timeout=PROCESSING_TIMEOUT,
        )

    # -- uploads (tus 1.0.0) --------------------------------------------------------------

    def _upload_url(self, location: str) -> str:
        """The absolute URL of an upload from a ``Location`` header or a stored URL.

        Only URLs on this client's server are accepted: the bearer token is sent there.
        """
        url = urljoin(self.base_url + "/", location)
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        if (theirs.scheme, theirs.netloc) != (mine.scheme, mine.netloc):
            raise VoxboxError("Unexpected upload URL", f"{url} is not on {self.base_url}")
        return url

    def create_upload(self, length: int | None, metadata: Mapping[str, str]) -> str:
        """Create a tus upload of ``length`` bytes (``None``: length deferred until the last
        PATCH); returns its absolute URL. ``metadata`` holds filename, content_type, chat_id,
        kind."""
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Metadata": encode_upload_metadata(metadata),
        }
        if length is None:
            headers["Upload-Defer-Length"] = "1"
        else:
            headers["Upload-Length"] = str(length)
        response = self._request("POST", "/uploads", headers=headers, content=b"")
        location = response.headers.get("location")
        if not location:
            raise VoxboxError("Unexpected response", "POST /uploads gave no Location")
        return self._upload_url(location)

    def upload_offset(self, upload_url: str) -> tuple[int, int | None]:
        """``(offset, length)`` of an upload as the server has it (``length`` ``None`` while
        deferred). Raises :class:`VoxboxAPIError` 404 (or 410) when the upload is gone."""
        response = self._request(
            "HEAD", self._upload_url(upload_url), headers={"Tus-Resumable": TUS_VERSION}
        )
        offset = _int_header(response, "upload-offset")
        if offset is None:
            raise VoxboxError("Unexpected response", "HEAD of an upload gave no Upload-Offset")
        return offset, _int_header(response, "upload-length")

    def patch_upload(
        self,
        upload_url: str,
        offset: int,
        data: bytes | Iterable[bytes],
        *,
        size: int | None = None,
        length: int | None = None,
    ) -> int:
        """Append ``data`` at ``offset``; returns the server's new offset.

        ``data`` may be an iterable of blocks (to report progress while sending); then
        ``size``, its total length, is required. ``length`` declares the upload's final length
        (the last PATCH of a deferred-length upload). Raises :class:`VoxboxAPIError` 409 when
        ``offset`` is not the server's.
        """
        if size is None:
            if not isinstance(data, bytes):
                raise TypeError("size is required when data is an iterable of blocks")
            size = len(data)
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(size),
            "Upload-Offset": str(offset),
        }
        if length is not None:
            headers["Upload-Length"] = str(length)
        response = self._request(
            "PATCH", self._upload_url(upload_url), headers=headers, content=data
        )
        new_offset = _int_header(response, "upload-offset")
        if new_offset is None:
            raise VoxboxError("Unexpected response", "PATCH of an upload gave no Upload-Offset")
        return new_offset

    def delete_upload(self, upload_url: str) -> None:
        """Discard an unfinished upload (tus termination)."""
        self._empty("DELETE", self._upload_url(upload_url), headers={"Tus-Resumable": TUS_VERSION})

    def open_uploads(self) -> dict[str, Any]:
        """``{uploads: [{id, offset, length, metadata, created_at}]}``: the caller's unfinished
        uploads (drafts)."""
        return self._json("GET", "/uploads", params={"state": "open"})

    # -- media ----------------------------------------------------------------------------

    def media(self, media_id: str) -> dict[str, Any]:
        """The media object ``{id, kind, content_type, size, duration_ms, waveform, ...}``."""
        return self._json("GET", f"/media/{_segment(media_id)}")

    @contextlib.contextmanager
    def stream_media(
        self,
        media_id: str,
        format: MediaFormat = "original",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """The streamed response of ``GET /media/{id}/content`` (200, or 206 for a ``Range``
        in ``headers``); its body is not read yet. Error answers are raised before yielding."""
        # Identity encoding: byte ranges and sizes must refer to the file's own bytes.
        with self._stream(
            f"/media/{_segment(media_id)}/content",
            params={"format": format},
            headers={"Accept-Encoding": "identity", **(headers or {})},
        ) as response:
            yield response

    @contextlib.contextmanager
    def stream_export(self, chat_id: str, *, media: bool = True) -> Iterator[httpx.Response]:
        """The streamed response of ``GET /chats/{id}/export`` (a zip); its body is not read
        yet. Error answers are raised before yielding."""
        with self._stream(
            f"/chats/{_segment(chat_id)}/export",
            params={"media": "true" if media else "false"},
            timeout=httpx.Timeout(60.0, read=None),  # the server may read media a while
        ) as response:
            yield response

    @contextlib.contextmanager
    def _stream(
        self,
        path: str,
        *,
        params: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        with self._http.stream(
            "GET",
            path,
            params=params,
            headers=self._headers(headers),
            timeout=timeout or self._http.timeout,
        ) as response:
            if response.is_error:
                response.read()
                raise problem_error(
                    response.status_code,
                    response.reason_phrase,
                    response.headers,
                    response.content,
                )
            yield response

    # -- events ---------------------------------------------------------------------------

    def poll_events(self, after: int, timeout: int = 25) -> dict[str, Any]:
        """Long-poll ``{events, seq}``: logged events with seq > ``after``, waiting up to
        ``timeout`` seconds for the first one."""
        return self._json(
            "GET",
            "/events",
            params={"after": after, "timeout": timeout},
            # The server holds the request for up to `timeout`; leave room for the answer.
            timeout=timeout + 10.0,
        )
