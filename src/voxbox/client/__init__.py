"""Python client of the voxbox HTTP/WebSocket API."""

from voxbox.client.events import listen
from voxbox.client.http import VoxboxAPIError, VoxboxClient, VoxboxError
from voxbox.client.resolve import ChatRefError, resolve_chat

__all__ = [
    "ChatRefError",
    "VoxboxAPIError",
    "VoxboxClient",
    "VoxboxError",
    "listen",
    "resolve_chat",
]
