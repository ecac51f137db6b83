"""Reading WhatsApp's chat.txt (Android, iOS, several locales) and Telegram's result.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from voxbox.core.importing.formats import UnknownFormat, parse_telegram, parse_whatsapp

UTC_ZONE = ZoneInfo("UTC")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_android_24_hour_day_first_with_an_attachment_and_a_caption() -> None:
    text = (
        "25/11/2026, 14:03 - Alice: Hello\n"
        "25/11/2026, 14:04 - Bob: PTT-20261125-WA0003.opus (file attached)\n"
        "listen!\n"
        "25/11/2026, 14:05 - Alice: <Media omitted>\n"
    )
    parsed = parse_whatsapp(text, UTC_ZONE)
    assert parsed.source == "whatsapp-android" and parsed.skipped == []
    hello, voice, omitted = parsed.entries
    assert (hello.line, hello.at, hello.sender, hello.text) == (
        1,
        at(2026, 11, 25, 14, 3),
        "Alice",
        "Hello",
    )
    assert voice.attachment == "PTT-20261125-WA0003.opus" and voice.text == "listen!"
    assert omitted.media_omitted and omitted.text is None


def test_android_12_hour_month_first_with_narrow_spaces_and_lowercase_pm() -> None:
    text = "11/25/26, 2:03\u202fPM - Alice: Hi\n11/25/26, 12:10 am - Bob: Late\n"
    first, second = parse_whatsapp(text, UTC_ZONE).entries
    assert first.at == at(2026, 11, 25, 14, 3) and second.at == at(2026, 11, 25, 0, 10)


def test_ios_with_seconds_marks_attachments_and_system_lines() -> None:
    text = (
        "\ufeff[25/11/2026, 14:03:12] Family: \u200eMessages and calls are end-to-end encrypted.\n"
        "[25/11/2026, 14:03:20] Alice: Hello\n"
        "\u200e[25/11/2026, 14:03:40] Alice: "
        "\u200e<attached: 00000003-AUDIO-2026-11-25-14-03-40.opus>\n"
        "[25/11/2026, 14:04:00] Bob: \u200eimage omitted\n"
    )
    parsed = parse_whatsapp(text, UTC_ZONE)
    assert parsed.source == "whatsapp-ios"
    assert [(s.line, s.reason) for s in parsed.skipped] == [(1, "system message")]
    hello, voice, image = parsed.entries
    assert hello.at == at(2026, 11, 25, 14, 3, 20)
    assert voice.attachment == "00000003-AUDIO-2026-11-25-14-03-40.opus" and voice.text is None
    assert image.media_omitted


def test_german_dotted_dates_and_multi_line_messages() -> None:
    text = "25.11.26, 14:03 - Oma: Erste Zeile\nzweite Zeile\n\ndritte\n25.11.26, 14:05 - Ich: Ja\n"
    first, second = parse_whatsapp(text, UTC_ZONE).entries
    assert first.text == "Erste Zeile\nzweite Zeile\n\ndritte" and second.sender == "Ich"


def test_android_system_lines_are_skipped() -> None:
    text = '25/11/2026, 14:03 - Alice created group "Family"\n25/11/2026, 14:04 - Alice: hi\n'
    parsed = parse_whatsapp(text, UTC_ZONE)
    assert [s.line for s in parsed.skipped] == [1] and len(parsed.entries) == 1


def test_the_date_order_is_decided_by_the_whole_file() -> None:
    late = "".join(f"0{d}/0{d + 1}/2026, 10:00 - A: x{d}\n" for d in range(1, 5))
    late += "11/25/2026, 10:00 - A: month first after all\n"
    entries = parse_whatsapp(late, UTC_ZONE).entries
    assert entries[0].at == at(2026, 1, 2, 10, 0)  # 01/02 read as January 2nd
    ambiguous = parse_whatsapp("01/02/2026, 10:00 - A: x\n", UTC_ZONE).entries
    assert ambiguous[0].at == at(2026, 2, 1, 10, 0)  # never said: day first
    named = "07/04/26, 2:03 PM - A: PTT-20260704-WA0001.opus (file attached)\n"
    assert parse_whatsapp(named, UTC_ZONE).entries[0].at == at(2026, 7, 4, 14, 3)
    with pytest.raises(UnknownFormat, match="line 2"):
        parse_whatsapp("25/11/2026, 10:00 - A: x\n11/25/2026, 10:00 - A: y\n", UTC_ZONE)


def test_times_are_read_in_the_given_zone() -> None:
    text = "04/07/2026, 14:03 - A: summer\n25/12/2026, 14:03 - A: winter\n"
    summer, winter = parse_whatsapp(text, ZoneInfo("Europe/London")).entries
    assert summer.at == at(2026, 7, 4, 13, 3) and winter.at == at(2026, 12, 25, 14, 3)


def test_an_unknown_format_quotes_its_first_line() -> None:
    with pytest.raises(UnknownFormat, match='line 1 is not a chat line: "Dear diary"'):
        parse_whatsapp("Dear diary\n25/11/2026, 14:03 - A: x\n", UTC_ZONE)
    with pytest.raises(UnknownFormat, match="line 1"):
        parse_whatsapp("", UTC_ZONE)


def test_telegram_text_pieces_voice_service_and_missing_files() -> None:
    export = {
        "name": "Mum",
        "messages": [
            {"id": 1, "type": "service", "date": "2026-11-25T14:00:00", "action": "create"},
            {
                "id": 2,
                "type": "message",
                "date": "2026-11-25T14:03:12",
                "from": "Mum",
                "text": ["Hi ", {"type": "bold", "text": "love"}],
            },
            {
                "id": 3,
                "type": "message",
                "date": "2026-11-25T14:04:00",
                "date_unixtime": "1795615440",
                "from": "Mum",
                "file": "voice_messages/audio_1@25-11-2026_14-04-00.ogg",
                "media_type": "voice_message",
                "text": "",
            },
            {
                "id": 4,
                "type": "message",
                "date": "2026-11-25T14:05:00",
                "from": "Mum",
                "file": "(File not included. Change data exporting settings to download.)",
                "text": "",
            },
        ],
    }
    parsed = parse_telegram(json.dumps(export).encode(), ZoneInfo("Europe/London"))
    assert parsed.title == "Mum" and [s.line for s in parsed.skipped] == [1]
    text, voice, missing = parsed.entries
    assert text.text == "Hi love" and text.at == at(2026, 11, 25, 14, 3, 12)
    assert voice.attachment == "voice_messages/audio_1@25-11-2026_14-04-00.ogg"
    assert voice.at == datetime.fromtimestamp(1795615440, UTC)
    assert missing.media_omitted and missing.attachment is None
    with pytest.raises(UnknownFormat):
        parse_telegram(b"{not json", UTC_ZONE)
    with pytest.raises(UnknownFormat):
        parse_telegram(b'{"name": "x"}', UTC_ZONE)
