"""voxbox's streamed age files open with the standard age tool, and the other way round."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support import agecli
from voxbox import age

CHEAP = 10  # scrypt work factor for tests; real backups use 18


def streamed(crypt: age.Encryptor | age.Decryptor, data: bytes, step: int) -> bytes:
    out = b"".join(crypt.update(data[i : i + step]) for i in range(0, len(data), step))
    return out + crypt.finish()


@pytest.mark.parametrize("size", [0, 1, age.CHUNK - 1, age.CHUNK, age.CHUNK + 1, 3 * age.CHUNK])
def test_round_trip_in_any_pieces(size: int) -> None:
    data = os.urandom(size)
    key = age.Passphrase("correct horse", work_factor=CHEAP)
    sealed = streamed(age.Encryptor(key), data, 7000)
    assert streamed(age.Decryptor(key), sealed, 333) == data
    assert age.decrypt(sealed, key) == data


def test_passphrase_file_opens_with_age_cli(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = tmp_path / "backup.age"
    path.write_bytes(age.encrypt(data, age.Passphrase("s3cret words", work_factor=CHEAP)))
    agecli.decrypt_with_passphrase(path, "s3cret words", tmp_path / "plain")
    assert (tmp_path / "plain").read_bytes() == data
    with pytest.raises(subprocess.CalledProcessError):
        agecli.decrypt_with_passphrase(path, "wrong", tmp_path / "plain2")


def test_keys_interoperate_with_age_keygen(tmp_path: Path) -> None:
    subprocess.run(["age-keygen", "-o", tmp_path / "key.txt"], check=True, capture_output=True)
    identity = age.X25519Identity.parse((tmp_path / "key.txt").read_text())
    public = subprocess.run(
        ["age-keygen", "-y", tmp_path / "key.txt"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert str(identity.recipient) == public
    assert str(age.X25519Identity.parse(str(identity))) == str(identity)

    data = os.urandom(100_000)
    (tmp_path / "ours.age").write_bytes(age.encrypt(data, age.X25519Recipient.parse(public)))
    opened = subprocess.run(
        ["age", "-d", "-i", tmp_path / "key.txt", tmp_path / "ours.age"],
        check=True,
        capture_output=True,
    ).stdout
    assert opened == data

    theirs = subprocess.run(
        ["age", "-r", public], input=data, check=True, capture_output=True
    ).stdout
    assert age.decrypt(theirs, identity) == data


def test_wrong_passphrase_and_wrong_key_are_told_apart_from_damage() -> None:
    sealed = age.encrypt(b"voice", age.Passphrase("right", work_factor=CHEAP))
    with pytest.raises(age.WrongKey):
        age.decrypt(sealed, age.Passphrase("wrong"))
    with pytest.raises(age.WrongKey):
        age.decrypt(sealed, age.X25519Identity.generate())
    with pytest.raises(age.AgeError, match="not an age"):
        age.decrypt(b"PK\x03\x04 a zip file", age.Passphrase("right"))


def test_truncated_or_altered_files_are_refused() -> None:
    key = age.Passphrase("right", work_factor=CHEAP)
    sealed = age.encrypt(os.urandom(3 * age.CHUNK), key)
    mac_line = sealed.index(b"\n---") + 1
    header_end = sealed.index(b"\n", mac_line) + 1 + 16  # the payload starts after the nonce
    cuts = [len(sealed) - 1, len(sealed) - age.CHUNK - age.TAG, header_end + 10, header_end]
    for cut in cuts:
        with pytest.raises(age.Damaged):
            age.decrypt(sealed[:cut], key)
    with pytest.raises(age.Damaged):
        age.decrypt(sealed[:40], key)
    # every bit of the MAC (one flip may even make it invalid base64), a payload byte, the last tag
    mac_bits = [(at, bit) for at in range(mac_line + 4, header_end - 17) for bit in range(8)]
    for where, bit in [*mac_bits, (header_end + 5, 0), (len(sealed) - 3, 0)]:
        altered = bytearray(sealed)
        altered[where] ^= 1 << bit
        with pytest.raises(age.Damaged):
            age.decrypt(bytes(altered), key)


def test_a_hostile_work_factor_is_refused_before_any_work() -> None:
    sealed = age.encrypt(b"x", age.Passphrase("p", work_factor=CHEAP))
    hostile = sealed.replace(f" {CHEAP}\n".encode(), b" 40\n", 1)
    with pytest.raises(age.AgeError, match="work factor 40"):
        age.decrypt(hostile, age.Passphrase("p"))
