"""The layering of DESIGN.md: the HTTP layer (api, web) talks to core only, never to the
database or the blob store directly."""

from __future__ import annotations

import ast
from pathlib import Path

import voxbox

SRC = Path(voxbox.__file__).parent
BELOW_CORE = ("voxbox.db", "voxbox.storage")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_api_and_web_import_nothing_from_db_or_storage() -> None:
    offending = [
        f"{path.relative_to(SRC)}: {name}"
        for package in ("api", "web")
        for path in sorted((SRC / package).rglob("*.py"))
        for name in _imports(path)
        if name.startswith(BELOW_CORE)
    ]
    assert offending == []
