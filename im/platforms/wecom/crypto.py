"""WeCom callback encryption (企业微信 加解密方案), also used by DingTalk's event callbacks (same scheme).

- ``msg_signature`` = SHA1 of the sorted concatenation of token, timestamp, nonce and the encrypted text.
- AES-256-CBC, key = base64-decode(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7 padding
  to a multiple of 32 bytes.
- Plaintext = 16 random bytes + message length (4 bytes, big endian) + message + receive id (the corp id
  for WeCom; the app key or corp id for DingTalk). A different receive id is someone else's message.

Everything that fails raises ``CallbackRejected``: a callback that does not verify is answered 401 and
nothing else happens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from im.platforms.base import CallbackRejected

BLOCK = 32


class MsgCrypt:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str, *also: str) -> None:
        """``also``: more receive ids that are ours too (DingTalk addresses internal apps by app key or corp id)."""
        if not (token and encoding_aes_key and receive_id):
            raise CallbackRejected("callbacks are not configured (token, AES key, receive id)", status=404)
        try:
            self.key = base64.b64decode(encoding_aes_key + "=")
        except binascii.Error:
            self.key = b""
        if len(self.key) != 32:
            raise CallbackRejected("the EncodingAESKey must be 43 characters of base64", status=404)
        self.token = token
        self.receive_id = receive_id
        self.receive_ids = {r.encode() for r in (receive_id, *also) if r}

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        joined = "".join(sorted([self.token, str(timestamp), str(nonce), encrypted]))
        return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - SHA1 is the platform's documented scheme

    def verify(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        if not signature or not hmac.compare_digest(self.signature(timestamp, nonce, encrypted), signature.lower()):
            raise CallbackRejected("bad msg_signature")

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside ``encrypted``; it must be addressed to our receive id."""
        try:
            data = base64.b64decode(encrypted, validate=False)
            if not data or len(data) % 16:
                raise ValueError("not whole AES blocks")
            decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
            plain = decryptor.update(data) + decryptor.finalize()
            pad = plain[-1]
            if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
                raise ValueError("bad padding")
            plain = plain[:-pad]
            (length,) = struct.unpack(">I", plain[16:20])
            message, receive_id = plain[20 : 20 + length], plain[20 + length :]
            if len(message) != length:
                raise ValueError("bad length")
        except (ValueError, struct.error, binascii.Error) as exc:
            raise CallbackRejected(f"cannot decrypt the callback: {exc}", status=400) from exc
        if not any(hmac.compare_digest(receive_id, ours) for ours in self.receive_ids):
            raise CallbackRejected("the callback is addressed to another receive id")
        return message

    def encrypt(self, message: bytes, *, random16: bytes | None = None) -> str:
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(message)) + message + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def check_timestamp(timestamp: str, max_age: float, *, now: float | None = None, millis: bool = False) -> None:
    """Refuse a callback signed longer than ``max_age`` seconds ago (or as far in the future): a replay."""
    try:
        value = float(timestamp) / (1000 if millis else 1)
    except (TypeError, ValueError) as exc:
        raise CallbackRejected("missing or bad timestamp") from exc
    if abs((time.time() if now is None else now) - value) > max_age:
        raise CallbackRejected("the callback's timestamp is outside the allowed window")
