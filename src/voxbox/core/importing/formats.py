"""Reading the chat files other apps export: WhatsApp's chat.txt (Android and iOS, any locale's
date order and clock) and Telegram Desktop's result.json. Pure functions, no I/O.

WhatsApp writes one line per message, ``DATE, TIME - Sender: text`` on Android and ``[DATE,
TIME] Sender: text`` on iOS, in the phone's locale: day/month or month/day, 12- or 24-hour
clocks, 2- or 4-digit years, and invisible marks (U+200E before attachments and system lines on
iOS, U+202F before AM/PM). A line that does not start with a date continues the message above.
The date order is decided from the whole file: a first field above 12 means day first, a second
one above 12 means month first; a file that never says is read day first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Entry:
    line: int  # where it starts: 1-based line of chat.txt, or position in Telegram's list
    at: datetime  # aware, UTC
    sender: str
    text: str | None  # None when the message is only an attachment
    attachment: str | None = None  # its file name (a path relative to the chat file)
    media_omitted: bool = False  # exported without its media


@dataclass(frozen=True)
class Skipped:
    line: int
    reason: str


@dataclass(frozen=True)
class Parsed:
    source: str  # "whatsapp-android" | "whatsapp-ios" | "telegram"
    title: str | None  # Telegram's chat name; WhatsApp's is in the file's name
    entries: list[Entry]
    skipped: list[Skipped]


class UnknownFormat(ValueError):
    """The file is not in a format we read; says the first line that could not be read."""

    def __init__(self, line: int, text: str) -> None:
        shown = text if len(text) <= 120 else text[:117] + "..."
        super().__init__(f'line {line} is not a chat line: "{shown}"')
        self.line = line


_MARKS = re.compile("[\ufeff\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile("[\u202f\u00a0\u2007]")
_DATE = r"(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})\.?"
_TIME = r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)(?:\s?(?P<ampm>[AaPp]\.?\s?[Mm]\.?))?"
_IOS = re.compile(rf"^\[{_DATE},? {_TIME}\] (?P<rest>.*)$")
_ANDROID = re.compile(rf"^{_DATE},? {_TIME} [-\u2013] (?P<rest>.*)$")
_ANDROID_FILE = re.compile(
    r"^(?P<name>.+?) \((file attached|Datei angehängt|archivo adjunto|fichier joint|"
    r"arquivo anexado|file allegato|bestand bijgevoegd)\)$"
)
_IOS_FILE = re.compile(
    r"^<(attached|Anhang|adjunto|anexo|pièce jointe|allegato|bijlage): (?P<name>[^>]+)>$"
)
_OMITTED = re.compile(
    r"^(<Media omitted>|<Medien ausgeschlossen>|<Multimedia omitido>|<Médias omis>|"
    r"<Mídia oculta>|<Media omessi>|"
    r"(image|audio|video|sticker|GIF|document|Contact card) omitted)$",
    re.IGNORECASE,
)


@dataclass
class _Raw:
    line: int
    date: tuple[str, str, str]
    time: str
    ampm: str | None
    rest: str  # after the timestamp, marks kept (they tell iOS system lines apart)
    more: list[str]


def parse_whatsapp(text: str, zone: ZoneInfo) -> Parsed:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise UnknownFormat(1, "")
    pattern: re.Pattern[str] | None = None
    raws: list[_Raw] = []
    for number, raw_line in enumerate(lines, 1):
        clean = _SPACES.sub(" ", _MARKS.sub("", raw_line))
        if pattern is None:
            pattern = _IOS if _IOS.match(clean) else _ANDROID if _ANDROID.match(clean) else None
            if pattern is None:
                raise UnknownFormat(number, clean.strip())
        match = pattern.match(clean)
        if match is None:
            raws[-1].more.append(_SPACES.sub(" ", raw_line))
            continue
        first, second, third = re.split(r"[./-]", match["date"])
        rest = _raw_rest(raw_line, pattern is _IOS)
        raws.append(_Raw(number, (first, second, third), match["time"], match["ampm"], rest, []))
    source = "whatsapp-ios" if pattern is _IOS else "whatsapp-android"
    day_first = _date_order(raws)
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for raw in raws:
        at = _when(raw, day_first, zone)
        message = _message(raw, source)
        if isinstance(message, Skipped):
            skipped.append(message)
        else:
            sender, body = message
            entries.append(_entry(raw.line, at, sender, body))
    return Parsed(source, None, entries, skipped)


def _raw_rest(raw_line: str, ios: bool) -> str:
    """The raw line after its timestamp, its invisible marks kept (the timestamp has none of
    the separators: the first "] " on iOS, the first " - " on Android, ends it)."""
    spaced = _SPACES.sub(" ", raw_line)
    for separator in ("] ",) if ios else (" - ", " \u2013 "):
        at = spaced.find(separator)
        if at >= 0:
            return spaced[at + len(separator) :]
    return spaced


def _date_order(raws: list[_Raw]) -> bool:
    """True for day/month: from the first field above 12 (day first) or the second (month
    first), else from attachment names; UnknownFormat at the first line that contradicts what
    an earlier one showed."""
    decided: bool | None = None
    for raw in raws:
        first, second, _ = raw.date
        if len(first) == 4:  # year first (2026-11-25): month, then day
            return False
        says = True if int(first) > 12 else False if int(second) > 12 else None
        if says is None:
            continue
        if decided is not None and says != decided:
            raise UnknownFormat(raw.line, "/".join(raw.date) + " contradicts the date order")
        decided = says
    return _order_from_file_names(raws) if decided is None else decided


_NAME_DATE = re.compile(r"(20\d\d)-?(\d\d)-?(\d\d)")


def _order_from_file_names(raws: list[_Raw]) -> bool:
    """When no date says its order, attachment names may: WhatsApp names them by date
    (``PTT-20261125-WA0003.opus``, ``00000003-AUDIO-2026-11-25-…``). Else day first."""
    for raw in raws:
        found = (
            _NAME_DATE.search(raw.rest) if ("attached" in raw.rest or "PTT-" in raw.rest) else None
        )
        if found is None:
            continue
        month, day = int(found[2]), int(found[3])
        first, second = int(raw.date[0]), int(raw.date[1])
        if (first, second) == (day, month) and day != month:
            return True
        if (first, second) == (month, day) and day != month:
            return False
    return True


def _when(raw: _Raw, day_first: bool, zone: ZoneInfo) -> datetime:
    a, b, c = (int(part) for part in raw.date)
    if len(raw.date[0]) == 4:
        year, month, day = a, b, c
    else:
        day, month = (a, b) if day_first else (b, a)
        year = c + 2000 if c < 100 else c
    parts = [int(p) for p in re.split(r"[:.]", raw.time)]
    hour, minute, second = parts[0], parts[1], parts[2] if len(parts) > 2 else 0
    if raw.ampm:
        pm = raw.ampm.lower().startswith("p")
        if hour > 12:
            raise UnknownFormat(raw.line, f"{raw.time} {raw.ampm} is not a time")
        hour = hour % 12 + (12 if pm else 0)
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        raise UnknownFormat(raw.line, f"{'/'.join(raw.date)} {raw.time} is not a date") from None
    return local.astimezone(UTC)


def _message(raw: _Raw, source: str) -> tuple[str, str] | Skipped:
    """(sender, the message's text with its further lines), or a system line to skip."""
    clean = _MARKS.sub("", raw.rest)
    sender, sep, body = clean.partition(": ")
    if not sep or not sender.strip() or len(sender) > 100:
        return Skipped(raw.line, "system message")
    body_raw = raw.rest.split(": ", 1)[1] if ": " in raw.rest else ""
    # iOS marks system lines ("Messages and calls are end-to-end encrypted") and attachments
    # alike; only attachments and omitted media are messages.
    marked = source == "whatsapp-ios" and body_raw.startswith("\u200e")
    if marked and not (_IOS_FILE.match(body.strip()) or _OMITTED.match(body.strip())):
        return Skipped(raw.line, "system message")
    more = [_MARKS.sub("", line) for line in raw.more]
    return sender.strip(), "\n".join([body, *more])


def _entry(line: int, at: datetime, sender: str, body: str) -> Entry:
    first, _, caption = body.partition("\n")
    first = first.strip()
    found = _ANDROID_FILE.match(first) or _IOS_FILE.match(first)
    if found:
        return Entry(line, at, sender, caption.strip() or None, attachment=found["name"].strip())
    if _OMITTED.match(first):
        return Entry(line, at, sender, caption.strip() or None, media_omitted=True)
    return Entry(line, at, sender, body.rstrip())


def parse_telegram(data: bytes, zone: ZoneInfo) -> Parsed:
    try:
        export = json.loads(data)
    except ValueError:
        raise UnknownFormat(1, data[:120].decode(errors="replace").split("\n")[0]) from None
    if not isinstance(export, dict) or not isinstance(export.get("messages"), list):
        raise UnknownFormat(1, data[:120].decode(errors="replace").split("\n")[0])
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for number, message in enumerate(export["messages"], 1):
        if not isinstance(message, dict) or message.get("type") != "message":
            skipped.append(Skipped(number, "service message"))
            continue
        try:
            at = _telegram_time(message, zone)
        except (KeyError, ValueError, TypeError):
            skipped.append(Skipped(number, "no readable date"))
            continue
        text = _telegram_text(message.get("text")) or None
        sender = str(message.get("from") or "Unknown")
        file = message.get("file") or message.get("photo")
        if isinstance(file, str) and file.startswith("(File not included"):
            entries.append(Entry(number, at, sender, text, media_omitted=True))
        elif isinstance(file, str):
            entries.append(Entry(number, at, sender, text, attachment=file))
        elif text:
            entries.append(Entry(number, at, sender, text))
        else:
            skipped.append(Skipped(number, "nothing voxbox keeps (a poll, a location ...)"))
    name = export.get("name")
    return Parsed("telegram", name if isinstance(name, str) else None, entries, skipped)


def _telegram_time(message: dict[str, object], zone: ZoneInfo) -> datetime:
    if message.get("date_unixtime"):
        return datetime.fromtimestamp(int(str(message["date_unixtime"])), UTC)
    return datetime.fromisoformat(str(message["date"])).replace(tzinfo=zone).astimezone(UTC)


def _telegram_text(value: object) -> str:
    """Telegram's text: a string, or a list of strings and ``{type, text}`` pieces."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict) else ""
            for p in value
        )
    return ""
