from __future__ import annotations

from celery import shared_task


@shared_task(name="trust.tasks.run_retention", acks_late=True)
def run_retention() -> dict[str, int]:
    """Beat: destroy what the retention policies say is due (bounded per run; the next tick goes on)."""
    from trust.retention import run

    return run().destroyed


@shared_task(name="trust.tasks.anchor_audit")
def anchor_audit() -> str:
    """Beat (when AUDIT_ANCHOR_FILE is set): record the chain's head outside the database."""
    from django.core.management import call_command

    call_command("anchor_audit", verbosity=0)
    return "anchored"
