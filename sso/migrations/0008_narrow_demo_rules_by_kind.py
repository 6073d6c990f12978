"""Demo databases seeded before rules knew document kinds: the seeded rules that read approval
documents get the kinds their role needs (as ``portal.demo.DEMO_RULES`` now seeds them). Only rules
with exactly the seeded name and no kind yet are touched: an admin's own rules stay as they are."""

from django.db import migrations

PURCHASING = ["purchase_requisition", "purchase_order"]
SPENDING = ["purchase_requisition", "purchase_order", "expense_claim", "payment_request"]
SEEDED = {
    "采购经理: 本部门 / Purchase managers: own department": PURCHASING,
    "采购经理: 审批 ≤ 50,000 CNY / Purchase managers approve up to 50,000 CNY": PURCHASING,
    "财务经理: 审批 ≤ 200,000 CNY / Finance managers approve up to 200,000 CNY": SPENDING,
    "仓库管理员: 查看采购申请 (备货) / Warehouse keepers: view requisitions (prepare goods)": ["purchase_requisition"],
}


def narrow(apps, schema_editor):
    PermissionRule = apps.get_model("sso", "PermissionRule")
    AccessChange = apps.get_model("sso", "AccessChange")
    for name, kinds in SEEDED.items():
        for rule in PermissionRule.objects.filter(name=name):
            if not rule.document_kinds:
                rule.document_kinds = kinds
                rule.save(update_fields=["document_kinds"])
                # Historical models send no audit signals: the change is recorded here.
                AccessChange.objects.create(
                    actor_name="system", model="sso.PermissionRule", object_id=str(rule.pk),
                    object_repr=rule.name[:200], change="updated",
                    before={"document_kinds": []}, after={"document_kinds": kinds},
                )


class Migration(migrations.Migration):
    dependencies = [("sso", "0007_permission_rule_document_kinds")]
    operations = [migrations.RunPython(narrow, migrations.RunPython.noop)]
