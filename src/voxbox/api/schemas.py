"""Request bodies. Unknown fields are refused (422) so typos never pass silently."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voxbox.core.accounts import MAX_PASSWORD, MIN_PASSWORD
from voxbox.core.backup import MIN_PASSPHRASE
from voxbox.core.chats import MAX_TITLE
from voxbox.core.uploads import UploadOut
from voxbox.core.views import ChatOut, MessageOut, UserOut

# What no database here stores: a NUL (PostgreSQL text), a lone surrogate (not UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ValueError("holds a NUL or a lone surrogate, which cannot be stored")
    elif isinstance(value, list):
        for item in value:
            _storable(item)
    return value


class Body(BaseModel):
    """A request body: unknown fields refused, types strict, every string storable."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_unstorable_characters(cls, value: Any) -> Any:
        return _storable(value)


# A handle: 3-32 of a-z 0-9 _ . (upper case is lower-cased, spaces around it dropped, as a
# phone keyboard adds them). Checked here so the schema says it.
Handle = Annotated[str, Field(pattern=r"^[ \t]*[A-Za-z0-9_.]{3,32}[ \t]*$")]
# A title holds something besides white space (what str.strip() removes).
Title = Annotated[str, Field(max_length=MAX_TITLE, pattern=r"[^\s\x1c-\x1f]")]


class RegisterIn(Body):
    handle: Handle
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)
    display_name: str | None = Field(None, max_length=64)
    invite: str | None = Field(None, max_length=64)


class MeIn(Body):
    transcribe: bool | None = None


class LoginIn(Body):
    handle: str = Field(max_length=64)
    password: str = Field(max_length=MAX_PASSWORD)


class AuthOut(BaseModel):
    user: UserOut
    token: str


class AuthConfigOut(BaseModel):
    registration: Literal["open", "invite", "closed"]


class InviteOut(BaseModel):
    code: str
    expires_at: str


class DirectChatIn(Body):
    kind: Literal["direct"]
    handle: Handle


class GroupChatIn(Body):
    kind: Literal["group"]
    title: Title
    handles: list[Handle] = Field(default_factory=list, max_length=1024)


class ChatsOut(BaseModel):
    chats: list[ChatOut]


class AddMemberIn(Body):
    handle: Handle


class SendMessageIn(Body):
    client_id: str = Field(min_length=1, max_length=64)
    kind: Literal["text", "voice", "audio"]
    text: str | None = None
    media_id: str | None = Field(None, max_length=64)
    upload_id: str | None = Field(None, max_length=64)
    reply_to: str | None = Field(None, max_length=64)
    view_once: bool = False


class MessagesOut(BaseModel):
    messages: list[MessageOut]
    has_more: bool


class StarredOut(BaseModel):
    messages: list[MessageOut]


class ForwardIn(Body):
    chat_ids: list[str] = Field(min_length=1, max_length=100)  # the schema says the setting


class ForwardOut(BaseModel):
    messages: list[MessageOut]


class EmailIn(Body):
    to: str = Field(max_length=320)
    note: str | None = Field(None, max_length=2000)


class EmailOut(BaseModel):
    to: str


class ReadIn(Body):
    up_to: str = Field(max_length=64)


class HealthOut(BaseModel):
    status: Literal["ok"]


class UploadsOut(BaseModel):
    uploads: list[UploadOut]


class FinishIn(Body):
    kind: Literal["voice", "audio"]


class BackupIn(Body):
    passphrase: str = Field(min_length=MIN_PASSPHRASE, max_length=1024)
