"""Who is calling: the authenticated user as the request layer and the token cache hold it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from voxbox.db.models import User


@dataclass(frozen=True, slots=True)
class Principal:
    """A frozen copy of the caller's account, detached from any database session: core code
    reads it and never writes through it (a function that changes the account loads the row)."""

    id: str
    handle: str
    display_name: str
    is_admin: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(user.id, user.handle, user.display_name, user.is_admin, user.created_at)
