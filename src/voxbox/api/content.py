"""Headers of every response that carries user-supplied bytes (media, drafts).

Such bytes must never run as a document of the app's origin, whatever they contain: the type is
from an allow-list (core/mediatypes.py), the browser must not sniff another one, and were a
browser to render them anyway, the sandbox CSP gives them an opaque origin and no script.
"""

from __future__ import annotations

from urllib.parse import quote

SANDBOX_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


def content_disposition(filename: str, *, inline: bool = True) -> str:
    """``inline`` (or ``attachment``) with an ASCII fallback name and the exact UTF-8 name
    (RFC 6266 / 8187)."""
    ascii_name = (
        "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
        or "audio"
    )
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
