"""Delete bot exchanges (questions and answers) older than BOT_RETENTION_DAYS."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from bot.models import BotExchange


class Command(BaseCommand):
    help = "Delete bot exchanges older than BOT_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, days: int | None = None, **options) -> None:
        keep = settings.BOT_RETENTION_DAYS if days is None else days
        cutoff = timezone.now() - dt.timedelta(days=keep)
        deleted, _ = BotExchange.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"deleted {deleted} bot exchanges older than {keep} days")
