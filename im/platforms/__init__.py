"""IM adapters, looked up by platform name."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .base import ImAdapter

ADAPTER_CLASSES: dict[str, str] = {
    "devinbox": "im.platforms.devinbox.adapter.DevInboxAdapter",
    "matrix": "im.platforms.matrix.adapter.MatrixAdapter",
    "slack": "im.platforms.slack.adapter.SlackAdapter",
    "agora": "im.platforms.agora.adapter.AgoraAdapter",
    "webhook": "im.platforms.webhook.adapter.WebhookAdapter",
    "wecom": "im.platforms.wecom.adapter.WeComAdapter",
    "feishu": "im.platforms.feishu.adapter.FeishuAdapter",
    "dingtalk": "im.platforms.dingtalk.adapter.DingTalkAdapter",
}


def get_adapter(platform: str) -> ImAdapter:
    try:
        return import_string(ADAPTER_CLASSES[platform])()
    except KeyError:
        raise LookupError(f"unknown IM platform {platform!r}") from None


def enabled_platforms() -> list[str]:
    return [p for p in settings.IM_ADAPTERS if p in ADAPTER_CLASSES]
