"""The stored login and listen position: location, permissions, round trips, whose position."""

from __future__ import annotations

import json
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


def test_listen_seq_belongs_to_one_user_of_one_server(conf: Path) -> None:
    assert load_listen_seq(ANN, "01ANN") is None
    save_listen_seq(ANN, "01ANN", 42)
    assert load_listen_seq(ANN, "01ANN") == 42
    assert mode(conf / "listen-state.json") == 0o600
    # another user, even with the same handle (the server was set up again): not theirs
    assert load_listen_seq(ANN, "01NEWANN") is None
    assert load_listen_seq(Credentials(url=ANN.url, token="t", handle="bob"), "01BOB") is None
    assert (
        load_listen_seq(Credentials(url="http://elsewhere", token="t", handle="ann"), "01ANN")
        is None
    )
    save_listen_seq(ANN, "01ANN", 0)
    assert load_listen_seq(ANN, "01ANN") == 0


def test_a_position_saved_before_user_ids_is_read_for_the_same_handle(conf: Path) -> None:
    conf.mkdir(parents=True)
    state = conf / "listen-state.json"
    state.write_text(json.dumps({"url": ANN.url, "handle": "ann", "seq": 17}))
    assert load_listen_seq(ANN, "01ANN") == 17
    assert load_listen_seq(Credentials(url=ANN.url, token="t", handle="bob"), "01BOB") is None
    save_listen_seq(ANN, "01ANN", 18)  # from then on it is kept by id
    assert json.loads(state.read_text())["user_id"] == "01ANN"
    assert load_listen_seq(ANN, "01OTHER") is None
    for seq in ("17", -1, True, None):
        state.write_text(json.dumps({"url": ANN.url, "user_id": "01ANN", "seq": seq}))
        assert load_listen_seq(ANN, "01ANN") is None, seq


def test_delete_forgets_login_and_position(conf: Path) -> None:
    save_credentials(ANN)
    save_listen_seq(ANN, "01ANN", 3)
    delete_credentials()
    assert load_credentials() is None
    assert load_listen_seq(ANN, "01ANN") is None
    delete_credentials()  # nothing left to delete is fine
