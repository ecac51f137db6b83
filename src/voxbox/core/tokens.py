"""A short-lived, per-process cache of authenticated tokens.

A logout drops its entries here and, through the bus's broadcast (``revoked``), on every other
worker of the deployment at once. Were that broadcast lost (Redis down), an entry still ends
after ``TTL_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict

from voxbox.core.principal import Principal

TTL_SECONDS = 30.0
MAX_ENTRIES = 10_000


def token_hash(token: str) -> str:
    """What the database keeps of a token (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenCache:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    @staticmethod
    def revoked(token_hash: str | None = None, user_id: str | None = None) -> str:
        """The broadcast that a login (its hash) or every login of a user ended."""
        return json.dumps({"revoked": {"token": token_hash, "user": user_id}})

    def on_broadcast(self, message: str) -> None:
        revoked = json.loads(message).get("revoked")
        if revoked is None:
            return
        if revoked.get("user"):
            self.drop_user(revoked["user"])
        if revoked.get("token"):
            self.drop(revoked["token"])

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[token_hash]
            return None
        return entry[1]

    def put(self, token_hash: str, user: Principal) -> None:
        self._entries[token_hash] = (time.monotonic() + TTL_SECONDS, user)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def drop(self, token_hash: str) -> None:
        self._entries.pop(token_hash, None)

    def drop_user(self, user_id: str) -> None:
        """Forget every cached token of the user (they logged out everywhere)."""
        for hashed in [h for h, (_, user) in self._entries.items() if user.id == user_id]:
            del self._entries[hashed]
