"""voxbox sync's file names are safe on any OS."""

from __future__ import annotations

import pytest

from voxbox.client.sync import MAX_NAME, safe_name


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("Trip: 2026/27?", "Trip_ 2026_27_"),
        ("..", "fallback"),
        ("  dots and spaces. . ", "dots and spaces"),
        ("CON", "_CON"),
        ("aux.opus", "_aux.opus"),
        ("tab\there", "tab_here"),
        ("Mamá", "Mamá"),
    ],
)
def test_names_become_safe(name: str, safe: str) -> None:
    assert safe_name(name, "fallback") == safe


def test_long_names_keep_their_extension() -> None:
    name = safe_name("x" * 300 + ".opus", "fallback")
    assert len(name) <= MAX_NAME and name.endswith(".opus")
