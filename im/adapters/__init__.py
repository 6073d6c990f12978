"""IM adapters, looked up by platform name."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .base import ImAdapter

ADAPTER_CLASSES: dict[str, str] = {
    "devinbox": "im.adapters.devinbox.adapter.DevInboxAdapter",
    "matrix": "im.adapters.matrix.adapter.MatrixAdapter",
    "slack": "im.adapters.slack.adapter.SlackAdapter",
    "agora": "im.adapters.agora.adapter.AgoraAdapter",
    "webhook": "im.adapters.webhook.adapter.WebhookAdapter",
    "wecom": "im.adapters.wecom.adapter.WeComAdapter",
    "feishu": "im.adapters.feishu.adapter.FeishuAdapter",
    "dingtalk": "im.adapters.dingtalk.adapter.DingTalkAdapter",
}


def get_adapter(platform: str) -> ImAdapter:
    try:
        return import_string(ADAPTER_CLASSES[platform])()
    except KeyError:
        raise LookupError(f"unknown IM platform {platform!r}") from None


def enabled_platforms() -> list[str]:
    return [p for p in settings.IM_ADAPTERS if p in ADAPTER_CLASSES]
