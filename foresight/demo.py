"""Foresight in the demo (``manage.py demo``): the ERP's two-year history, the buyers' right to turn a
suggestion into a requisition, one run of each nightly job, and one unusual expense claim — so that a
restock suggestion, a receivable-risk alert and a flagged claim are in the dev inbox at once."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from foresight import services
from foresight.models import ExpenseScore
from sso.models import PermissionRule

REQUISITION_RULE = "采购员: 按补货建议创建采购申请 / Buyers: requisitions from restock suggestions"


def setup_foresight_demo(connector: Any) -> dict[str, Any]:
    """The history and the buyers' rule (seconds); the jobs are :func:`run_foresight_jobs`."""
    from erp.connectors.demo.history import seed_history

    seeded = seed_history()
    with transaction.atomic():
        PermissionRule.objects.get_or_create(
            name=REQUISITION_RULE,
            defaults={"connector": connector, "erp_roles": ["buyer"], "actions": ["foresight.requisition"]},
        )
    return {"seeded": seeded}


def run_foresight_jobs(connector: Any) -> dict[str, Any]:
    """One run of each nightly job (the demand fit takes a minute or more on a fresh database, so the
    demo command runs this beside the server), then the unusual claim."""
    from erp.connectors.demo.services import create_expense_claim

    runs = {
        "demand": services.run_demand(connector),
        "credit": services.run_credit(connector),
        "expense": services.run_expense(connector),
    }
    if not ExpenseScore.objects.filter(document__connector=connector, flagged=True).exists():
        create_expense_claim()  # far above the usual 业务招待 claim: scored when it arrives, flagged
    return {kind: run.version if run else None for kind, run in runs.items()}
