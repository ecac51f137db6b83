"""Accounts: registration, login and tokens, invites, the admin bootstrap."""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.config import PasswordHashSettings, Registration
from voxbox.core import usage
from voxbox.core.backends import Backends
from voxbox.core.chats import do_create_self_chat
from voxbox.core.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from voxbox.core.events import publish_ephemeral
from voxbox.core.principal import Principal
from voxbox.core.tokens import TokenCache, token_hash
from voxbox.core.views import MeOut, SessionEndedOut, me_out
from voxbox.db.models import Invite, Token, User
from voxbox.db.queries import insert_ignoring_conflicts
from voxbox.ids import new_id
from voxbox.metrics import PASSWORD_HASHES
from voxbox.timeutil import utcnow

HANDLE_RE = re.compile(r"[a-z0-9_.]{3,32}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class _Passwords:
    """argon2id at one cost (``settings.password_hash``), and a hash of that cost to verify
    against when the handle is unknown, so both login failures take the same time."""

    def __init__(self, cost: PasswordHashSettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_cost, parallelism=cost.parallelism
        )
        self.dummy_hash = self.hasher.hash(secrets.token_hex(16))


@functools.cache
def _passwords(cost: PasswordHashSettings) -> _Passwords:
    return _Passwords(cost)


def normalize_handle(handle: str) -> str:
    return handle.strip().lower()


def check_handle(handle: str) -> str:
    handle = normalize_handle(handle)
    if not HANDLE_RE.fullmatch(handle):
        raise Invalid("A handle is 3 to 32 characters of a-z, 0-9, '_' and '.'.")
    return handle


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.")


@functools.cache
def _hashing(at_once: int) -> anyio.CapacityLimiter:
    """Threads that may hash at once (created on first use, inside the event loop)."""
    return anyio.CapacityLimiter(at_once)


async def hash_password(cost: PasswordHashSettings, password: str, at_once: int = 2) -> str:
    """An argon2id hash of ``password`` at ``cost``, off the event loop, at most ``at_once``
    at a time in this process."""
    PASSWORD_HASHES.labels("hash").inc()
    return await anyio.to_thread.run_sync(
        lambda: _passwords(cost).hasher.hash(password), limiter=_hashing(at_once)
    )


async def verify_password(
    cost: PasswordHashSettings, password_hash: str | None, password: str, at_once: int = 2
) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``password_hash`` (None: an unknown user, always False, in
    the same time), and, when it matches a hash of another cost, a new hash at ``cost``.

    A hash carries its own parameters, so hashes made at any earlier cost still verify.
    """

    def verify() -> tuple[bool, str | None]:
        passwords = _passwords(cost)
        try:
            ok = passwords.hasher.verify(password_hash or passwords.dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False, None
        if password_hash is None or not ok:
            return False, None
        if passwords.hasher.check_needs_rehash(password_hash):
            return True, passwords.hasher.hash(password)
        return True, None

    PASSWORD_HASHES.labels("verify").inc()
    return await anyio.to_thread.run_sync(verify, limiter=_hashing(at_once))


async def do_issue_token(session: AsyncSession, user: User) -> str:
    """A new 256-bit bearer token; only its hash is stored. Runs inside a write transaction."""
    token = secrets.token_urlsafe(32)
    session.add(Token(hash=token_hash(token), user_id=user.id, created_at=utcnow()))
    return token


async def do_create_user(
    session: AsyncSession,
    handle: str,
    password_hash: str,
    display_name: str | None,
    is_admin: bool,
) -> User:
    """Insert a user and their self chat. Runs inside a write transaction; handle is checked."""
    if await session.scalar(select(User.id).where(User.handle == handle)):
        raise Conflict(f"The handle {handle!r} is taken.")
    user = User(
        id=new_id(),
        handle=handle,
        display_name=(display_name or handle).strip()[:64] or handle,
        password_hash=password_hash,
        is_admin=is_admin,
        created_at=utcnow(),
        last_seq=0,
        acked_seq=0,
    )
    session.add(user)
    await session.flush()
    await do_create_self_chat(session, user)
    return user


@dataclass(frozen=True)
class NewInvite:
    """An invite just made: its code to hand out, and when it stops working."""

    code: str
    expires_at: datetime


async def register(
    b: Backends,
    handle: str,
    password: str,
    display_name: str | None,
    invite: str | None,
    address: str = "",
) -> tuple[Principal, str]:
    """Register a user per the registration mode; returns the user and a new token.

    An admin invite (the first-start bootstrap invite) works in every mode and makes the user
    an admin; ordinary invites are needed in ``invite`` mode and accepted in ``open`` mode.
    Rate limited per client address. Everything that can refuse is checked before the
    password is hashed (a costly step nobody should get for free): the invite and the handle
    are checked again, atomically, when the user is made.
    """
    limits = b.settings.limits
    count, retry = await b.limiter.hit(f"register:{address}", limits.registration_window_seconds)
    if count > limits.registrations_per_address:
        raise RateLimited("Too many registrations from this address.", retry)
    handle = check_handle(handle)
    check_password(password)
    mode = b.settings.registration
    async with b.read() as session:
        if invite:
            await _check_invite(session, invite, mode)
        elif mode is not Registration.open:
            raise Forbidden(_NEEDS_INVITE[mode])
        if await session.scalar(select(User.id).where(User.handle == handle)) is not None:
            raise Conflict(f"The handle {handle!r} is taken.")
    password_hash = await hash_password(
        b.settings.password_hash, password, limits.password_hashes_at_once
    )
    try:
        async with b.transaction() as session:
            claimed = await _claim_invite(session, invite, mode) if invite else None
            if claimed is None and mode is not Registration.open:
                raise Forbidden(_NEEDS_INVITE[mode])
            is_admin = claimed is not None and claimed.grants_admin
            user = await do_create_user(session, handle, password_hash, display_name, is_admin)
            if claimed is not None:
                claimed.used_by = user.id
            token = await do_issue_token(session, user)
    except IntegrityError as exc:  # a concurrent registration took the handle
        raise Conflict(f"The handle {handle!r} is taken.") from exc
    return Principal.of(user), token


_NEEDS_INVITE = {
    Registration.closed: "Registration is closed on this server; ask an admin.",
    Registration.invite: "Registration needs an invite on this server.",
}


async def _check_invite(session: AsyncSession, code: str, mode: Registration) -> Invite:
    """The invite, if it may be used now (Forbidden otherwise); it is not claimed here."""
    invite = await session.scalar(select(Invite).where(Invite.code == code))
    if invite is None or invite.used_at is not None or invite.expires_at <= utcnow():
        raise Forbidden("This invite is unknown, used or expired.")
    if mode is Registration.closed and not invite.grants_admin:
        raise Forbidden(_NEEDS_INVITE[mode])
    return invite


async def _claim_invite(session: AsyncSession, code: str, mode: Registration) -> Invite:
    """Mark an invite used (once, atomically, also against concurrent registrations)."""
    now = utcnow()
    invite = await _check_invite(session, code, mode)
    claimed = await session.execute(
        update(Invite)
        .where(Invite.code == code, Invite.used_at.is_(None))
        .values(used_at=now)
        .returning(Invite.code)
    )
    if claimed.first() is None:
        raise Forbidden("This invite is unknown, used or expired.")
    return invite


async def login(b: Backends, handle: str, password: str, address: str) -> tuple[Principal, str]:
    """Check credentials; wrong password and unknown handle fail the same way, in the same time.

    Rate limited per client address (every attempt) and per handle and address (failed
    attempts). Failures are not counted per handle alone: then anyone, from anywhere, could lock
    a user out by failing on purpose; the owner, from an address with no failures, gets in.
    """
    limits = b.settings.limits
    window = limits.login_window_seconds
    handle = normalize_handle(handle)
    count, retry = await b.limiter.hit(f"login:addr:{address}", window)
    if count > limits.login_attempts_per_address:
        raise RateLimited("Too many login attempts from this address.", retry)
    failed_here = f"login:handle:{handle}:{address}"
    failures, retry = await b.limiter.peek(failed_here, window)
    if failures >= limits.login_attempts_per_handle:
        raise RateLimited("Too many failed logins for this handle from here.", retry)

    async with b.read() as session:
        user = await session.scalar(select(User).where(User.handle == handle))
    ok, rehashed = await verify_password(
        b.settings.password_hash,
        user.password_hash if user else None,
        password,
        limits.password_hashes_at_once,
    )
    if user is None or not ok:
        await b.limiter.hit(failed_here, window)
        raise Unauthorized("Wrong handle or password.")
    async with b.transaction() as session:
        if rehashed is not None:  # the hash predates the current cost setting
            await session.execute(
                update(User).where(User.id == user.id).values(password_hash=rehashed)
            )
        token = await do_issue_token(session, user)
    return Principal.of(user), token


TOKEN_USE_REFRESH = timedelta(hours=1)  # how stale a token's last_used_at may be


async def authenticate(b: Backends, token: str) -> Principal:
    """The user of a token; 401 if it is unknown, revoked, or was unused too long."""
    hashed = token_hash(token)
    cached = b.tokens.get(hashed)
    if cached is not None:
        return cached
    async with b.read() as session:
        row = (
            await session.execute(
                select(User, Token.created_at, Token.last_used_at)
                .join(Token, Token.user_id == User.id)
                .where(Token.hash == hashed)
            )
        ).first()
    if row is None:
        raise Unauthorized("Missing, unknown or revoked token.")
    user, created_at, last_used_at = row
    now = utcnow()
    used = last_used_at or created_at
    idle_days = b.settings.limits.token_idle_days
    if now - used > timedelta(days=idle_days):
        async with b.transaction() as session:
            await session.execute(delete(Token).where(Token.hash == hashed))
        raise Unauthorized(f"This login was not used for {idle_days} days; log in again.")
    if now - used > TOKEN_USE_REFRESH:  # a write at most hourly per login, not per request
        async with b.transaction() as session:
            await session.execute(
                update(Token).where(Token.hash == hashed).values(last_used_at=now)
            )
    principal = Principal.of(user)
    b.tokens.put(hashed, principal)
    return principal


async def logout(b: Backends, user: Principal, token: str, *, everywhere: bool = False) -> None:
    """Revoke the token (or every token of the user); their open sockets close at once, on
    every worker (``session.ended`` over the bus)."""
    hashed = token_hash(token)
    async with b.transaction() as session:
        which = Token.user_id == user.id if everywhere else Token.hash == hashed
        await session.execute(delete(Token).where(which))
    revoked = TokenCache.revoked(user_id=user.id) if everywhere else TokenCache.revoked(hashed)
    await b.bus.broadcast(revoked)  # every worker's token cache, this one's too
    ended = SessionEndedOut(token=None if everywhere else hashed, everywhere=everywhere)
    await publish_ephemeral(b.bus, [user.id], "session.ended", ended)


async def get_me(b: Backends, user: Principal) -> MeOut:
    """The caller, with their storage and their choices."""
    async with b.read() as session:
        transcribe = await session.scalar(select(User.transcribe).where(User.id == user.id))
    return me_out(user, await usage.my_storage(b, user.id), bool(transcribe))


async def update_me(b: Backends, user: Principal, *, transcribe: bool | None = None) -> MeOut:
    """Change the caller's choices. Turning transcription off applies to what they send from
    then on; their messages transcribed before keep their transcripts."""
    if transcribe is not None:
        async with b.transaction() as session:
            await session.execute(
                update(User).where(User.id == user.id).values(transcribe=transcribe)
            )
    return await get_me(b, user)


async def get_user(b: Backends, handle: str) -> Principal:
    async with b.read() as session:
        user = await session.scalar(select(User).where(User.handle == normalize_handle(handle)))
    if user is None:
        raise NotFound(f"No user {handle!r}.")
    return Principal.of(user)


async def create_invite(b: Backends, creator: Principal, grants_admin: bool = False) -> NewInvite:
    if not creator.is_admin:
        raise Forbidden("Only admins can create invites.")
    return await _insert_invite(b, creator.id, grants_admin)


async def _insert_invite(b: Backends, creator_id: str | None, grants_admin: bool) -> NewInvite:
    now = utcnow()
    invite = Invite(
        code=secrets.token_urlsafe(12),
        created_by=creator_id,
        grants_admin=grants_admin,
        created_at=now,
        expires_at=now + timedelta(hours=b.settings.limits.invite_ttl_hours),
    )
    async with b.transaction() as session:
        session.add(invite)
    return NewInvite(invite.code, invite.expires_at)


async def bootstrap_invite(b: Backends) -> NewInvite | None:
    """With no admin yet, the single-use invite that makes its user admin; else None.

    There is one per deployment (a unique partial index): every worker, and every start, shows
    the same one until it is used or expires, when the next start makes another.
    """
    async with b.transaction() as session:
        if await session.scalar(select(User.id).where(User.is_admin.is_(True)).limit(1)):
            return None
        unused = (
            Invite.grants_admin.is_(True),
            Invite.created_by.is_(None),
            Invite.used_at.is_(None),
        )
        now = utcnow()
        await session.execute(delete(Invite).where(*unused, Invite.expires_at <= now))
        await session.execute(
            insert_ignoring_conflicts(session, Invite),
            [
                {
                    "code": secrets.token_urlsafe(12),
                    "created_by": None,
                    "grants_admin": True,
                    "created_at": now,
                    "expires_at": now + timedelta(hours=b.settings.limits.invite_ttl_hours),
                }
            ],
        )
        invite = (await session.scalars(select(Invite).where(*unused))).one()
        return NewInvite(invite.code, invite.expires_at)


async def create_user(
    b: Backends,
    handle: str,
    password: str,
    display_name: str | None = None,
    is_admin: bool = False,
) -> Principal:
    """Create a user directly (admin CLI), whatever the registration mode."""
    handle = check_handle(handle)
    check_password(password)
    password_hash = await hash_password(b.settings.password_hash, password)
    async with b.transaction() as session:
        user = await do_create_user(session, handle, password_hash, display_name, is_admin)
    return Principal.of(user)
