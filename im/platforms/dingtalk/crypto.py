"""DingTalk callback security (open.dingtalk.com, 事件订阅 › HTTP 推送 / 机器人 › 接收消息).

- Event subscription (HTTP push): query ``msg_signature`` (older docs: ``signature``), ``timestamp``
  (milliseconds) and ``nonce``, body ``{"encrypt": …}``: the WeCom scheme (SHA1 signature over the sorted
  token, timestamp, nonce and ciphertext; AES-256-CBC with the key from the 43-character aes_key, IV its
  first 16 bytes, PKCS#7 to 32; plaintext random16 + length + message + owner key). The owner key is the
  app key for an internal app (the corp id in older documentation; both are accepted, both are ours).
  Every event must be answered with the encrypted word ``success``, or DingTalk retries it.
- Robot messages (HTTP mode): headers ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(app secret,
  ``timestamp + "\\n" + app secret``)); the timestamp must be within an hour of now.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from im.platforms.base import CallbackRejected
from im.platforms.wecom.crypto import MsgCrypt, check_timestamp

__all__ = ["MsgCrypt", "check_timestamp", "robot_sign", "verify_robot_sign", "success_reply"]

ROBOT_WINDOW_SECONDS = 3600


def robot_sign(timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_robot_sign(timestamp: str, sign: str, secret: str, *, now: float | None = None) -> None:
    if not secret:
        raise CallbackRejected("DingTalk robot callbacks are not configured", status=404)
    check_timestamp(timestamp, ROBOT_WINDOW_SECONDS, now=now, millis=True)
    if not sign or not hmac.compare_digest(robot_sign(timestamp, secret), sign):
        raise CallbackRejected("bad DingTalk robot sign")


def success_reply(crypt: MsgCrypt, *, now: float | None = None) -> dict[str, str]:
    """The encrypted ``success`` every event subscription callback must be answered with."""
    timestamp = str(int((time.time() if now is None else now) * 1000))
    nonce = secrets.token_hex(8)
    encrypted = crypt.encrypt(b"success")
    return {"msg_signature": crypt.signature(timestamp, nonce, encrypted), "timeStamp": timestamp, "nonce": nonce,
            "encrypt": encrypted}
