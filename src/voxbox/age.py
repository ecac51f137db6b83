"""The age file format (age-encryption.org/v1), streamed, on `cryptography`.

Backups are age files so that they open with the standard ``age -d`` tool, without voxbox. The
age libraries on PyPI encrypt whole byte strings in memory; a backup is larger than memory, so
this module implements the format itself:

- a header naming the file key wrapped for one recipient (a passphrase through scrypt, or an
  X25519 public key ``age1...``), authenticated with HMAC-SHA256;
- the payload in 64 KiB chunks of ChaCha20-Poly1305 (STREAM), whose last chunk is flagged, so
  that truncation, reordering and tampering are all detected.

`Encryptor` and `Decryptor` are push-style: feed bytes, get bytes back, then ``finish()``.
Nothing here does I/O, so the same code serves files, HTTP bodies and S3 objects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INTRO = b"age-encryption.org/v1"
CHUNK = 64 * 1024
TAG = 16
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_X25519_LABEL = b"age-encryption.org/v1/X25519"
_ZERO_NONCE = bytes(12)
_MAX_HEADER = 64 * 1024


class AgeError(ValueError):
    """The data is not an age file we can open."""


class WrongKey(AgeError):
    """The passphrase or key does not open this file."""


class Damaged(AgeError):
    """The file was truncated or altered after it was written."""


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    """Decode unpadded base64, refusing non-canonical spellings as the age spec requires."""
    if not re.fullmatch(rb"[A-Za-z0-9+/]*", text) or len(text) % 4 == 1:
        raise AgeError("bad base64 in the age header")
    data = base64.b64decode(text + b"=" * (-len(text) % 4))
    if _b64(data) != text:
        raise AgeError("bad base64 in the age header")
    return data


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _scrypt(passphrase: str, salt: bytes, work_factor: int) -> bytes:
    n = 1 << work_factor
    return hashlib.scrypt(
        passphrase.encode(),
        salt=_SCRYPT_LABEL + salt,
        n=n,
        r=8,
        p=1,
        maxmem=129 * 8 * n + (1 << 20),
        dklen=32,
    )


# Keys: bech32 (BIP 173), the encoding age uses for "age1..." and "AGE-SECRET-KEY-1...".
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            check ^= generator[i] if (top >> i) & 1 else 0
    return check


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: bytes | list[int], source: int, target: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    for value in data:
        acc = acc << source | value
        bits += source
        while bits >= target:
            bits -= target
            out.append(acc >> bits & (1 << target) - 1)
    if pad and bits:
        out.append(acc << (target - bits) & (1 << target) - 1)
    elif not pad and (bits >= source or acc & (1 << bits) - 1):
        raise AgeError("bad key encoding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _regroup(data, 8, 5, pad=True)
    check = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    words += [check >> 5 * (5 - i) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[w] for w in words)


def bech32_decode(text: str) -> tuple[str, bytes]:
    if text.lower() != text and text.upper() != text:
        raise AgeError("mixed-case key")
    text = text.lower()
    hrp, sep, rest = text.rpartition("1")
    if not sep or not hrp or len(rest) < 6 or any(c not in _BECH32 for c in rest):
        raise AgeError("not a bech32 key")
    words = [_BECH32.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise AgeError("bad key checksum")
    return hrp, bytes(_regroup(words[:-6], 5, 8, pad=False))


# Recipients wrap the file key into a stanza; identities unwrap it.


@dataclass(frozen=True)
class Stanza:
    kind: bytes
    args: tuple[bytes, ...]
    body: bytes

    def encode(self) -> bytes:
        line = b"-> " + b" ".join((self.kind, *self.args)) + b"\n"
        text = _b64(self.body)
        lines = [text[i : i + 64] for i in range(0, len(text), 64)]
        if not lines or len(lines[-1]) == 64:
            lines.append(b"")
        return line + b"".join(piece + b"\n" for piece in lines)


@dataclass(frozen=True)
class Passphrase:
    """A passphrase, for both directions. Decryption refuses work factors above the maximum."""

    passphrase: str
    work_factor: int = 18
    max_work_factor: int = 22

    def wrap(self, file_key: bytes) -> Stanza:
        salt = os.urandom(16)
        key = _scrypt(self.passphrase, salt, self.work_factor)
        body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
        return Stanza(b"scrypt", (_b64(salt), str(self.work_factor).encode()), body)

    def unwrap(self, stanzas: list[Stanza]) -> bytes:
        if len(stanzas) != 1 or stanzas[0].kind != b"scrypt":
            raise WrongKey("this file is not encrypted with a passphrase")
        stanza = stanzas[0]
        if len(stanza.args) != 2 or not re.fullmatch(rb"[1-9][0-9]?", stanza.args[1]):
            raise AgeError("bad scrypt stanza")
        salt, work_factor = _unb64(stanza.args[0]), int(stanza.args[1])
        if len(salt) != 16 or len(stanza.body) != 32:
            raise AgeError("bad scrypt stanza")
        if work_factor > self.max_work_factor:
            raise AgeError(f"scrypt work factor {work_factor} is above {self.max_work_factor}")
        key = _scrypt(self.passphrase, salt, work_factor)
        try:
            return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            raise WrongKey("wrong passphrase") from None


@dataclass(frozen=True)
class X25519Recipient:
    """An ``age1...`` public key: encrypts without being able to decrypt."""

    public: bytes

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        hrp, data = bech32_decode(text.strip())
        if hrp != "age" or len(data) != 32:
            raise AgeError("not an age public key (age1...)")
        return cls(data)

    def __str__(self) -> str:
        return bech32_encode("age", self.public)

    def wrap(self, file_key: bytes) -> Stanza:
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public))
        key = _hkdf(shared, share + self.public, _X25519_LABEL)
        body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
        return Stanza(b"X25519", (_b64(share),), body)


@dataclass(frozen=True)
class X25519Identity:
    """An ``AGE-SECRET-KEY-1...`` private key, as written by ``age-keygen``."""

    secret: bytes

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        """Read a key file: comment lines (``#``) and one secret key line."""
        keys = [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]
        if len(keys) != 1:
            raise AgeError("an identity file holds exactly one AGE-SECRET-KEY-1... line")
        hrp, data = bech32_decode(keys[0])
        if hrp != "age-secret-key-" or len(data) != 32:
            raise AgeError("not an age secret key (AGE-SECRET-KEY-1...)")
        return cls(data)

    def __str__(self) -> str:
        return bech32_encode("age-secret-key-", self.secret).upper()

    @property
    def recipient(self) -> X25519Recipient:
        private = X25519PrivateKey.from_private_bytes(self.secret)
        return X25519Recipient(private.public_key().public_bytes_raw())

    def unwrap(self, stanzas: list[Stanza]) -> bytes:
        private = X25519PrivateKey.from_private_bytes(self.secret)
        public = private.public_key().public_bytes_raw()
        for stanza in stanzas:
            if stanza.kind != b"X25519" or len(stanza.args) != 1 or len(stanza.body) != 32:
                continue
            share = _unb64(stanza.args[0])
            if len(share) != 32:
                raise AgeError("bad X25519 stanza")
            shared = private.exchange(X25519PublicKey.from_public_bytes(share))
            key = _hkdf(shared, share + public, _X25519_LABEL)
            try:
                return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                continue
        raise WrongKey("this key does not open the file")


Recipient = Passphrase | X25519Recipient
Identity = Passphrase | X25519Identity


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class Encryptor:
    """Encrypts a stream: ``update()`` returns ciphertext as chunks fill, ``finish()`` the rest."""

    def __init__(self, recipient: Recipient) -> None:
        file_key = os.urandom(16)
        header = INTRO + b"\n" + recipient.wrap(file_key).encode() + b"---"
        mac = hmac.digest(_hkdf(file_key, b"", b"header"), header, "sha256")
        nonce = os.urandom(16)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._pending = bytearray(header + b" " + _b64(mac) + b"\n" + nonce)
        self._plain = bytearray()
        self._counter = 0

    def update(self, data: bytes) -> bytes:
        return b"".join(self.update_parts(data))

    def update_parts(self, data: bytes) -> list[bytes]:
        """Like ``update``, as pieces: to write them out without joining them first."""
        # A chunk is sealed only once a byte after it has come: the last one must be flagged,
        # and is never empty (unless the whole payload is). ``_plain`` holds what waits.
        view, at = memoryview(data), 0
        out = [bytes(self._pending)]
        self._pending.clear()
        if self._plain:
            at = min(CHUNK - len(self._plain), len(view))
            self._plain += view[:at]
            if len(self._plain) == CHUNK and at < len(view):
                out.append(self._seal(bytes(self._plain), last=False))
                self._plain.clear()
        while len(view) - at > CHUNK:
            out.append(self._seal(view[at : at + CHUNK], last=False))
            at += CHUNK
        self._plain += view[at:]
        return out

    def finish(self) -> bytes:
        out = self._pending + self._seal(bytes(self._plain), last=True)
        self._pending, self._plain = bytearray(), bytearray()
        return bytes(out)

    def _seal(self, chunk: bytes | memoryview, last: bool) -> bytes:
        sealed = self._aead.encrypt(_chunk_nonce(self._counter, last), chunk, None)
        self._counter += 1
        return sealed


class Decryptor:
    """Decrypts a stream. Nothing it returned can be trusted as complete until ``finish()``."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity
        self._buffer = bytearray()
        self._aead: ChaCha20Poly1305 | None = None
        self._counter = 0

    def update(self, data: bytes) -> bytes:
        self._buffer += data
        if self._aead is None and not self._read_header():
            return b""
        # A full chunk is known not to be the last only once a byte after it has arrived.
        size = CHUNK + TAG
        full = (len(self._buffer) - 1) // size if self._buffer else 0
        view = memoryview(self._buffer)
        out = [self._open(view[i * size : (i + 1) * size], last=False) for i in range(full)]
        view.release()
        del self._buffer[: full * size]
        return b"".join(out)

    def finish(self) -> bytes:
        if self._aead is None and not self._read_header():
            raise Damaged("the file ends inside its header")
        if len(self._buffer) < TAG or (self._counter and len(self._buffer) == TAG):
            raise Damaged("the file is truncated")
        plain = self._open(bytes(self._buffer), last=True)
        self._buffer.clear()
        return plain

    def _open(self, sealed: bytes | memoryview, last: bool) -> bytes:
        assert self._aead is not None
        try:
            plain = self._aead.decrypt(_chunk_nonce(self._counter, last), sealed, None)
        except InvalidTag:
            raise Damaged("the file is truncated or was altered") from None
        self._counter += 1
        return plain

    def _read_header(self) -> bool:
        """Parse the header once it has fully arrived; False while more bytes are needed."""
        end = self._buffer.find(b"\n---")
        if end < 0 or self._buffer.find(b"\n", end + 4) < 0:
            if len(self._buffer) > _MAX_HEADER or not INTRO.startswith(
                bytes(self._buffer[: len(INTRO)])
            ):
                raise AgeError("this is not an age-encrypted file")
            return False
        line_end = self._buffer.find(b"\n", end + 4)
        if len(self._buffer) < line_end + 1 + 16:
            return False
        header = bytes(self._buffer[: end + 4])
        mac_line = bytes(self._buffer[end + 4 : line_end])
        nonce = bytes(self._buffer[line_end + 1 : line_end + 17])
        del self._buffer[: line_end + 17]
        lines = header.split(b"\n")
        if lines[0] != INTRO or not mac_line.startswith(b" "):
            raise AgeError("this is not an age-encrypted file")
        file_key = self._identity.unwrap(_stanzas(lines[1:-1]))
        expected = hmac.digest(_hkdf(file_key, b"", b"header"), header, "sha256")
        try:
            mac = _unb64(mac_line[1:])
        except AgeError:
            raise Damaged("the file's header was altered") from None
        if not hmac.compare_digest(expected, mac):
            raise Damaged("the file's header was altered")
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        return True


def _stanzas(lines: list[bytes]) -> list[Stanza]:
    stanzas = []
    i = 0
    while i < len(lines):
        parts = lines[i].split(b" ")
        if parts[0] != b"->" or len(parts) < 2:
            raise AgeError("bad age header")
        body = b""
        while True:
            i += 1
            if i >= len(lines):
                raise AgeError("bad age header")
            body += lines[i]
            if len(lines[i]) < 64:
                break
        stanzas.append(Stanza(parts[1], tuple(parts[2:]), _unb64(body)))
        i += 1
    return stanzas


def encrypt_file(source: BinaryIO, out: BinaryIO, recipient: Recipient) -> None:
    """Encrypt the rest of ``source`` into ``out`` (blocking: run it in a worker thread)."""
    encryptor = Encryptor(recipient)
    while chunk := source.read(1024 * 1024):
        out.writelines(encryptor.update_parts(chunk))
    out.write(encryptor.finish())


def encrypt(data: bytes, recipient: Recipient) -> bytes:
    encryptor = Encryptor(recipient)
    return encryptor.update(data) + encryptor.finish()


def decrypt(data: bytes, identity: Identity) -> bytes:
    decryptor = Decryptor(identity)
    return decryptor.update(data) + decryptor.finish()
