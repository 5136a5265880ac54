"""Personal data at rest: Fernet encryption and a keyed hash for finding duplicates.

Both come from the one DATA_KEY setting. The hash uses its own sub-key, derived with HKDF, so
the value that sits next to every encrypted column is never computed with the encryption key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Changing this string changes every lookup hash, and stored hashes would stop matching.
_LOOKUP_INFO = b"cadrebot/lookup-hash/v1"


class DataKeyError(ValueError):
    """DATA_KEY is not a Fernet key (urlsafe base64 of exactly 32 bytes)."""


class DecryptError(Exception):
    """A token was not made with this key, or was altered."""


class DataCipher:
    def __init__(self, key: str) -> None:
        raw = _decode_key(key)
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))
        self._lookup_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_LOOKUP_INFO
        ).derive(raw)

    def encrypt(self, text: str) -> bytes:
        """A Fernet token; randomized, so equal texts give different tokens."""
        return self._fernet.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise DecryptError("token does not match DATA_KEY or was altered") from None

    def lookup_hash(self, value: str) -> str:
        """HMAC-SHA256 (hex) of `value`: deterministic, for uniqueness checks and lookups.

        Callers pass the normalized form (e.g. from `parse_id_number`), since the hash sees
        only exact bytes.
        """
        return hmac.new(self._lookup_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _decode_key(key: str) -> bytes:
    # Strict decoding: plain urlsafe_b64decode silently drops characters outside the alphabet,
    # which would let a mangled key through as some other key.
    try:
        raw = base64.b64decode(key.strip().encode("ascii"), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise DataKeyError(
            "DATA_KEY is not urlsafe base64; make one with `cadrebot keygen`"
        ) from None
    if len(raw) != 32:
        raise DataKeyError("DATA_KEY must decode to 32 bytes; make one with `cadrebot keygen`")
    return raw
