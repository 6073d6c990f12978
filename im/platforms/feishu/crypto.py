"""Feishu/Lark callback security (open.feishu.cn, 事件订阅 › 配置 Encrypt Key / 安全校验).

- Signature: ``X-Lark-Signature`` = hex SHA-256 of ``timestamp + nonce + encrypt_key + raw body``, with
  ``X-Lark-Request-Timestamp`` and ``X-Lark-Request-Nonce``; sent when an Encrypt Key is set.
- Encryption (optional): the body is ``{"encrypt": base64}``; AES-256-CBC with key = SHA-256 of the
  Encrypt Key, IV = the first 16 bytes of the decoded data, PKCS#7 padding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from im.platforms.base import CallbackRejected


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def verify_signature(headers_signature: str, timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> None:
    expected = signature(timestamp, nonce, encrypt_key, body)
    if not headers_signature or not hmac.compare_digest(expected, headers_signature.lower()):
        raise CallbackRejected("bad X-Lark-Signature")


def decrypt(encrypt_key: str, encrypted: str) -> bytes:
    try:
        data = base64.b64decode(encrypted)
        if len(data) < 32 or len(data) % 16:
            raise ValueError("not whole AES blocks")
        key = hashlib.sha256(encrypt_key.encode()).digest()
        decryptor = Cipher(algorithms.AES(key), modes.CBC(data[:16])).decryptor()
        plain = decryptor.update(data[16:]) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
            raise ValueError("bad padding")
    except (ValueError, binascii.Error) as exc:
        raise CallbackRejected(f"cannot decrypt the callback: {exc}", status=400) from exc
    return plain[:-pad]


def encrypt(encrypt_key: str, plain: bytes, *, iv: bytes | None = None) -> str:
    """What Feishu does to a body (used by tests to build callbacks)."""
    iv = iv or os.urandom(16)
    pad = 16 - len(plain) % 16
    key = hashlib.sha256(encrypt_key.encode()).digest()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()).decode()
