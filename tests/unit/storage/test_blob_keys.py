"""Blob keys: the content-addressed format, and what every store refuses."""

from __future__ import annotations

import hashlib

import pytest

from voxbox.storage import blob_key, validate_key

DIGEST = hashlib.sha256(b"voice").hexdigest()


def test_blob_key_fans_out_by_the_first_two_bytes() -> None:
    assert blob_key(DIGEST) == f"{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}"
    assert blob_key(DIGEST, ".ogg") == f"{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}.ogg"
    assert blob_key(DIGEST, "-orig") == f"{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}-orig"
    assert blob_key(DIGEST, ".tar.gz").endswith(".tar.gz")


@pytest.mark.parametrize(
    "digest", ["", "abc", DIGEST.upper(), DIGEST[:-1], DIGEST + "0", "g" * 64, "../" + DIGEST[3:]]
)
def test_blob_key_wants_a_lowercase_sha256_hex_digest(digest: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        blob_key(digest)


@pytest.mark.parametrize("suffix", ["ogg", ".OGG", "/x", "./..", ".", ". ogg", ".ogg/", "..ogg"])
def test_blob_key_refuses_odd_suffixes(suffix: str) -> None:
    with pytest.raises(ValueError, match="suffix"):
        blob_key(DIGEST, suffix)


@pytest.mark.parametrize("key", ["a", "ab/cd/ef.ogg", "x-y_z.1", "media/ab/cd/e", "a" * 512])
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["", "../x", "a/../b", "/abs", "a//b", "a/", ".", "..", ".tmp-1", "a/.b", "A", "a b", "a\nb"],
)
def test_invalid_keys(key: str) -> None:
    with pytest.raises(ValueError, match="blob key"):
        validate_key(key)
