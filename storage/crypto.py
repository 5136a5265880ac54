"""Personal data at rest: Fernet encryption and a keyed hash for finding duplicates.

DATA_KEY holds one Fernet key or several, comma-separated, newest first (MultiFernet): values
are encrypted with the first and decrypted with any, so a new key can be put in front, every
stored value re-encrypted with `cadrebot rekey`, and the old key then removed.

The lookup hash (duplicates of ID numbers and phones) must not change when the encryption key
does, or every stored hash would stop matching. Its key is therefore kept in the database,
wrapped with DATA_KEY (storage.rekey.load_cipher), rather than derived from DATA_KEY. A
`DataCipher` built from a single key alone derives it with HKDF (`_LOOKUP_INFO`), which is the
derivation every hash stored before key rotation existed was made with, and the value the
database's lookup key starts from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Changing this string changes every lookup hash, and stored hashes would stop matching.
_LOOKUP_INFO = b"cadrebot/lookup-hash/v1"
LOOKUP_KEY_BYTES = 32


class DataKeyError(ValueError):
    """DATA_KEY is not a Fernet key (urlsafe base64 of exactly 32 bytes), or a list of them."""


class DecryptError(Exception):
    """A token was not made with any key of DATA_KEY, or was altered."""


class LookupKeyMissing(RuntimeError):
    """A cipher with several keys was asked for a lookup hash without the stored lookup key."""


@contextmanager
def _no_key_opens() -> Iterator[None]:
    """InvalidToken as DecryptError: no key of DATA_KEY opens the token, or it was altered."""
    try:
        yield
    except InvalidToken:
        raise DecryptError("token does not match DATA_KEY or was altered") from None


class DataCipher:
    """Encrypts with the newest key of DATA_KEY, decrypts with any, hashes with the lookup key.

    `lookup_key` is the database's (storage.rekey.load_cipher); without it a single-key cipher
    derives the historical one, and a several-key cipher has none (which key would it be?).
    """

    def __init__(self, keys: str, lookup_key: bytes | None = None) -> None:
        raws = parse_keys(keys)
        self._fernets = [Fernet(base64.urlsafe_b64encode(raw)) for raw in raws]
        self._multi = MultiFernet(self._fernets)
        self._derived = [derive_lookup_key(raw) for raw in raws]
        if lookup_key is not None and len(lookup_key) != LOOKUP_KEY_BYTES:
            raise ValueError("a lookup key is 32 bytes")
        self._lookup_key = lookup_key
        if lookup_key is None and len(raws) == 1:
            self._lookup_key = self._derived[0]

    @property
    def fernet(self) -> MultiFernet:
        """Fernet's own API (encrypt/decrypt of bytes, InvalidToken) over every key, for the
        bot's persistence, which stores bytes."""
        return self._multi

    @property
    def key_count(self) -> int:
        return len(self._fernets)

    @property
    def derived_lookup_keys(self) -> list[bytes]:
        """The HKDF lookup key of each key, newest first: the candidates for the key that
        made the hashes of a database that has not stored its lookup key yet."""
        return list(self._derived)

    def with_lookup_key(self, lookup_key: bytes) -> DataCipher:
        clone = DataCipher.__new__(DataCipher)
        clone._fernets, clone._multi, clone._derived = self._fernets, self._multi, self._derived
        if len(lookup_key) != LOOKUP_KEY_BYTES:
            raise ValueError("a lookup key is 32 bytes")
        clone._lookup_key = lookup_key
        return clone

    def encrypt(self, text: str) -> bytes:
        """A Fernet token under the newest key; randomized, so equal texts differ."""
        return self._multi.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        return self.decrypt_bytes(token).decode("utf-8")

    def encrypt_bytes(self, data: bytes) -> bytes:
        return self._multi.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        with _no_key_opens():
            return self._multi.decrypt(token)

    def is_current(self, token: bytes) -> bool:
        """Whether the newest key opens `token` (rekey leaves such values alone)."""
        try:
            self._fernets[0].decrypt(token)
        except InvalidToken:
            return False
        return True

    def rotate(self, token: bytes) -> bytes:
        """The same value under the newest key (DecryptError if no key opens it)."""
        with _no_key_opens():
            return self._multi.rotate(token)

    def lookup_hash(self, value: str) -> str:
        """HMAC-SHA256 (hex) of `value`: deterministic, for uniqueness checks and lookups.

        Callers pass the normalized form (e.g. from `parse_id_number`), since the hash sees
        only exact bytes.
        """
        if self._lookup_key is None:
            raise LookupKeyMissing("several DATA_KEY keys: load the lookup key from the database")
        return lookup_hash_with(self._lookup_key, value)


def lookup_hash_with(lookup_key: bytes, value: str) -> str:
    return hmac.new(lookup_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def derive_lookup_key(raw: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=LOOKUP_KEY_BYTES, salt=None, info=_LOOKUP_INFO
    ).derive(raw)


def parse_keys(keys: str) -> list[bytes]:
    """The raw keys of DATA_KEY, newest first; DataKeyError (one line, no key in it) if any
    part is not a Fernet key or a key is listed twice."""
    parts = [part.strip() for part in keys.split(",")]
    if not any(parts):
        raise DataKeyError("DATA_KEY is empty; make one with `cadrebot keygen`")
    raws: list[bytes] = []
    for position, part in enumerate(parts, start=1):
        where = f"key {position} of DATA_KEY" if len(parts) > 1 else "DATA_KEY"
        raw = _decode_key(part, where)
        if raw in raws:
            raise DataKeyError(f"{where} is listed twice")
        raws.append(raw)
    return raws


def _decode_key(key: str, where: str = "DATA_KEY") -> bytes:
    # Strict decoding: plain urlsafe_b64decode silently drops characters outside the alphabet,
    # which would let a mangled key through as some other key.
    try:
        raw = base64.b64decode(key.encode("ascii"), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise DataKeyError(
            f"{where} is not urlsafe base64; make one with `cadrebot keygen`"
        ) from None
    if len(raw) != 32:
        raise DataKeyError(f"{where} must decode to 32 bytes; make one with `cadrebot keygen`")
    return raw
