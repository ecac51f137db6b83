"""The stored login and listen position: location, permissions, round trips."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from voxbox.client import VoxboxError
from voxbox.client.config import (
    Credentials,
    config_dir,
    delete_credentials,
    load_credentials,
    load_listen_seq,
    save_credentials,
    save_listen_seq,
)

ANN = Credentials(url="http://voxbox.test", token="secret", handle="ann")


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "conf" / "voxbox"
    monkeypatch.setenv("VOXBOX_CONFIG_DIR", str(directory))
    return directory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_env_overrides_config_dir(conf: Path) -> None:
    assert config_dir() == conf


def test_credentials_are_private(conf: Path) -> None:
    path = save_credentials(ANN)
    assert path == conf / "credentials.json"
    assert mode(path) == 0o600
    assert mode(conf) == 0o700
    assert load_credentials() == ANN


def test_overwriting_keeps_permissions_and_leaves_no_temp_file(conf: Path) -> None:
    save_credentials(ANN)
    (conf / "credentials.json").chmod(0o644)
    bob = Credentials(url="http://voxbox.test", token="other", handle="bob")
    save_credentials(bob)
    assert mode(conf / "credentials.json") == 0o600
    assert load_credentials() == bob
    assert sorted(p.name for p in conf.iterdir()) == ["credentials.json"]


def test_missing_and_corrupt(conf: Path) -> None:
    assert load_credentials() is None
    conf.mkdir(parents=True)
    (conf / "credentials.json").write_text('{"url": "x"}')
    with pytest.raises(VoxboxError, match="missing"):
        load_credentials()
    (conf / "credentials.json").write_text("{")
    with pytest.raises(VoxboxError, match="Unreadable"):
        load_credentials()


def test_listen_seq_belongs_to_one_login(conf: Path) -> None:
    assert load_listen_seq(ANN) is None
    save_listen_seq(ANN, 42)
    assert load_listen_seq(ANN) == 42
    assert mode(conf / "listen-state.json") == 0o600
    assert load_listen_seq(Credentials(url=ANN.url, token="t", handle="bob")) is None
    assert load_listen_seq(Credentials(url="http://elsewhere", token="t", handle="ann")) is None


def test_delete_forgets_login_and_position(conf: Path) -> None:
    save_credentials(ANN)
    save_listen_seq(ANN, 3)
    delete_credentials()
    assert load_credentials() is None
    assert load_listen_seq(ANN) is None
    delete_credentials()  # nothing left to delete is fine
