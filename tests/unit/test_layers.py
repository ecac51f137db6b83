"""The layering of DESIGN.md: the HTTP layer (api, web) talks to core only, never to the
database or the blob store directly."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import voxbox

SRC = Path(voxbox.__file__).parent
BELOW_CORE = ("voxbox.db", "voxbox.storage")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str, module: str, is_package: bool) -> list[str]:
    """Every module ``module`` imports, absolute: ``from voxbox import db`` is ``voxbox.db``,
    ``from ..storage import x`` in ``voxbox.api.errors`` is ``voxbox.storage.x``."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: None if is_package else -1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def _below_core(name: str) -> bool:
    return any(name == layer or name.startswith(f"{layer}.") for layer in BELOW_CORE)


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("import voxbox.db.models", "voxbox.api.deps"),
        ("from voxbox.storage import BlobNotFound", "voxbox.api.errors"),
        ("from voxbox import db", "voxbox.api.deps"),
        ("from ..storage import BlobStream", "voxbox.api.errors"),
        ("from ...db.models import Upload", "voxbox.api.routes.uploads"),
        ("from .. import storage", "voxbox.web.share"),
    ],
)
def test_every_form_of_import_is_seen(source: str, module: str) -> None:
    assert any(_below_core(name) for name in _imports(source, module, is_package=False))


def test_api_and_web_import_nothing_from_db_or_storage() -> None:
    offending = [
        f"{path.relative_to(SRC)}: {name}"
        for package in ("api", "web")
        for path in sorted((SRC / package).rglob("*.py"))
        for name in _imports(path.read_text(), _module_name(path), path.name == "__init__.py")
        if _below_core(name)
    ]
    assert offending == []
