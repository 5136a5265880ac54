"""Personal data at rest: Fernet encryption and the keyed lookup hash, both from DATA_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.fernet import Fernet

from storage.crypto import DataCipher, DataKeyError, DecryptError

FIXED_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()  # AAECAwQF…Hh8=
ID_NUMBER = "520221199003151230"


@pytest.fixture
def cipher() -> DataCipher:
    return DataCipher(Fernet.generate_key().decode())


@pytest.mark.parametrize(
    "text",
    [
        "阿依古丽·买买提",
        "520221199003151230",
        "回乡创业五年，带动二十户增收。\n\n曾任村团支部书记。",
        "𠀀 and emoji 🌾",
        "",
    ],
)
def test_roundtrip(cipher: DataCipher, text: str) -> None:
    token = cipher.encrypt(text)
    assert isinstance(token, bytes)
    if text:
        assert text.encode() not in token
    assert cipher.decrypt(token) == text


def test_tokens_differ_for_the_same_plaintext(cipher: DataCipher) -> None:
    tokens = {cipher.encrypt("张三") for _ in range(5)}
    assert len(tokens) == 5
    assert {cipher.decrypt(t) for t in tokens} == {"张三"}


def test_tokens_are_plain_fernet(cipher: DataCipher) -> None:
    # The same DATA_KEY also feeds the bot's persistence through Fernet directly.
    key = Fernet.generate_key()
    assert Fernet(key).decrypt(DataCipher(key.decode()).encrypt("李四")) == "李四".encode()


def test_decrypt_with_another_key_fails(cipher: DataCipher) -> None:
    token = cipher.encrypt("13812345678")
    other = DataCipher(Fernet.generate_key().decode())
    with pytest.raises(DecryptError):
        other.decrypt(token)


@pytest.mark.parametrize("token", [b"", b"not a token", b"gAAAAA" + b"A" * 80])
def test_decrypt_garbage_fails(cipher: DataCipher, token: bytes) -> None:
    with pytest.raises(DecryptError):
        cipher.decrypt(token)


def test_decrypt_tampered_token_fails(cipher: DataCipher) -> None:
    raw = bytearray(base64.urlsafe_b64decode(cipher.encrypt("王五")))
    raw[-40] ^= 0x01  # a ciphertext byte; the HMAC no longer matches
    with pytest.raises(DecryptError):
        cipher.decrypt(base64.urlsafe_b64encode(bytes(raw)))


def test_lookup_hash_is_stable(cipher: DataCipher) -> None:
    digest = cipher.lookup_hash(ID_NUMBER)
    assert digest == cipher.lookup_hash(ID_NUMBER)
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_lookup_hash_is_stable_across_instances_of_the_same_key() -> None:
    key = Fernet.generate_key().decode()
    assert DataCipher(key).lookup_hash(ID_NUMBER) == DataCipher(key).lookup_hash(ID_NUMBER)


def test_lookup_hash_differs_per_key() -> None:
    one = DataCipher(Fernet.generate_key().decode())
    two = DataCipher(Fernet.generate_key().decode())
    assert one.lookup_hash(ID_NUMBER) != two.lookup_hash(ID_NUMBER)


def test_lookup_hash_differs_per_value(cipher: DataCipher) -> None:
    values = [ID_NUMBER, ID_NUMBER[:17] + "X", "13812345678", "13812345679", ""]
    assert len({cipher.lookup_hash(v) for v in values}) == len(values)


def test_lookup_hash_golden_value() -> None:
    # Stored hashes must keep matching after upgrades: this value may never change.
    assert (
        DataCipher(FIXED_KEY).lookup_hash(ID_NUMBER)
        == "87e33616d0475c2715053b5a0636e54394d0fcffd8692ca6579012621243d07c"
    )


def _rfc5869_sha256(ikm: bytes, info: bytes) -> bytes:
    # HKDF written out from RFC 5869 with the stdlib, to check the derivation independently.
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_lookup_hash_uses_an_hkdf_sub_key_not_the_data_key() -> None:
    raw = bytes(range(32))
    sub_key = _rfc5869_sha256(raw, b"cadrebot/lookup-hash/v1")
    expected = hmac.new(sub_key, ID_NUMBER.encode(), hashlib.sha256).hexdigest()
    assert DataCipher(FIXED_KEY).lookup_hash(ID_NUMBER) == expected
    for key in (raw, raw[:16], raw[16:], FIXED_KEY.encode()):
        assert hmac.new(key, ID_NUMBER.encode(), hashlib.sha256).hexdigest() != expected


def test_key_with_surrounding_whitespace_is_accepted() -> None:
    assert DataCipher(f" {FIXED_KEY}\n").lookup_hash("x") == DataCipher(FIXED_KEY).lookup_hash("x")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not-a-key",
        base64.urlsafe_b64encode(bytes(16)).decode(),  # 16 bytes
        base64.urlsafe_b64encode(bytes(33)).decode(),  # 33 bytes
        FIXED_KEY.rstrip("="),  # padding lost
        FIXED_KEY[:20] + "!" + FIXED_KEY[21:],  # a character outside base64
        FIXED_KEY[:20] + "*" + FIXED_KEY[20:],  # lenient decoders would skip the "*"
        "密钥" * 22,
    ],
)
def test_bad_key_is_refused(key: str) -> None:
    with pytest.raises(DataKeyError) as exc:
        DataCipher(key)
    assert isinstance(exc.value, ValueError)
    assert "DATA_KEY" in str(exc.value)
