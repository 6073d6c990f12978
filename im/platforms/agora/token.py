"""Agora Chat app tokens (AccessToken2, version "007"), as Agora's ChatTokenBuilder builds them.

The PyPI ``agora-token-builder`` (1.0.0) has only the RTC/RTM builders of the older "006" tokens, so
this is the published AccessToken2 algorithm (AgoraIO/Tools, DynamicKey/AgoraDynamicKey): a
little-endian packed description of the app id, issue time, expiry, salt and services, signed with
HMAC-SHA256 under a key derived from the app certificate, zlib-compressed and base64-encoded. The
test checks it against Agora's own published test vector.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
import zlib

VERSION = "007"
SERVICE_CHAT = 5
PRIVILEGE_CHAT_USER = 1
PRIVILEGE_CHAT_APP = 2


def _u16(value: int) -> bytes:
    return struct.pack("<H", value)


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _string(value: bytes) -> bytes:
    return _u16(len(value)) + value


def _is_hex32(value: str) -> bool:
    try:
        return len(value) == 32 and bytes.fromhex(value) is not None
    except ValueError:
        return False


def build_chat_token(
    app_id: str,
    app_certificate: str,
    expire: int,
    *,
    user_id: str = "",
    issue_ts: int | None = None,
    salt: int | None = None,
) -> str:
    """An app token (no ``user_id``) or a user token, valid ``expire`` seconds from ``issue_ts``."""
    if not (_is_hex32(app_id) and _is_hex32(app_certificate)):
        raise ValueError("the Agora app id and app certificate are 32 hex characters each")
    issue_ts = int(time.time()) if issue_ts is None else issue_ts
    salt = secrets.randbelow(99_999_999) + 1 if salt is None else salt
    privilege = PRIVILEGE_CHAT_USER if user_id else PRIVILEGE_CHAT_APP
    service = _u16(SERVICE_CHAT) + _u16(1) + _u16(privilege) + _u32(expire) + _string(user_id.encode())
    signing_info = _string(app_id.encode()) + _u32(issue_ts) + _u32(expire) + _u32(salt) + _u16(1) + service
    key = hmac.new(_u32(issue_ts), app_certificate.encode(), hashlib.sha256).digest()
    key = hmac.new(_u32(salt), key, hashlib.sha256).digest()
    signature = hmac.new(key, signing_info, hashlib.sha256).digest()
    return VERSION + base64.b64encode(zlib.compress(_string(signature) + signing_info)).decode()
