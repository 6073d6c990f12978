"""Seed a fresh Tryton database for the connector tests (run as a script: no Django here).

    python -m erp.connectors.tryton.seed_tryton CONFIG_FILE DATABASE

Company 演示公司, users li.si (approver, buyer), zhang.san (requester) and wang.wu (may read requisitions,
may not approve), two warehouses with stock, one waiting requisition, one sale, one posted customer invoice,
and two suppliers (each with a contact email) with a confirmed purchase of SKU-123 each, whose incoming
moves wait for delivery.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from zoneinfo import ZoneInfo

PASSWORD = "tryton-Secret-42"  # noqa: S105 - test accounts of a throw-away database
SUPPLIER_EMAIL = "liu.wei@jinggong-motor.example.cn"
OTHER_SUPPLIER_EMAIL = "sales@huanan-drive.example.cn"


# The demo company keeps Chinese time, as the portal does (TIME_ZONE): Tryton's "today" (``ir.date``)
# is then the company's date, not UTC's, which is the day before from 16:00 UTC on.
COMPANY_TIMEZONE = "Asia/Shanghai"


def company_today() -> dt.date:
    """The date in the demo company's time zone: what Tryton calls today for it."""
    return dt.datetime.now(ZoneInfo(COMPANY_TIMEZONE)).date()


def seed(config_file: str, database: str) -> dict:
    from proteus import Model, config

    cfg = config.set_trytond(database, config_file=config_file)
    cfg.skip_warning = True  # stock moves without origin: fine for seed data
    from trytond.modules.account.tests.tools import create_chart, get_accounts
    from trytond.modules.company.tests.tools import create_company, get_company
    from trytond.modules.currency.tests.tools import get_currency

    cny = get_currency("CNY")
    create_company(currency=cny)
    company = get_company()
    company.timezone = COMPANY_TIMEZONE
    company.save()
    company.party.name = "演示公司"
    company.party.save()
    create_chart(company)
    accounts = get_accounts(company)

    Party = Model.get("party.party")
    Employee = Model.get("company.employee")
    Company = Model.get("company.company")
    User = Model.get("res.user")
    Group = Model.get("res.group")
    ModelData = Model.get("ir.model.data")

    def group(module: str, fs_id: str):
        return Group(ModelData.get_id(module, fs_id, {}))

    requisition_group = group("purchase_requisition", "group_purchase_requisition")
    approval_group = group("purchase_requisition", "group_purchase_requisition_approval")
    request_group = group("purchase_request", "group_purchase_request")
    stock_group = group("stock", "group_stock")
    sale_group = group("sale", "group_sale")
    product_group = group("product", "group_product_admin")
    account_group = group("account", "group_account")  # reads invoices' lines to pay (receivables)
    purchase_group = group("purchase", "group_purchase")  # purchase lines and their notes (board actions)

    def user(login: str, name: str, groups: list):
        party = Party(name=name)
        party.save()
        employee = Employee(party=party, company=company)
        employee.save()
        record = User(login=login, name=name, password=PASSWORD)
        record.companies.append(Company(company.id))
        record.company = Company(company.id)
        record.employees.append(Employee(employee.id))
        record.employee = Employee(employee.id)
        for item in groups:
            record.groups.append(Group(item.id))
        record.save()
        return record, employee

    approver, approver_employee = user(
        "li.si", "李四",
        [requisition_group, approval_group, request_group, stock_group, sale_group, product_group, account_group,
         purchase_group],
    )
    requester, requester_employee = user("zhang.san", "张三", [requisition_group])
    user("wang.wu", "王五", [requisition_group, stock_group])

    Configuration = Model.get("account.configuration")
    account_config = Configuration(1)
    account_config.default_category_account_expense = accounts["expense"]
    account_config.default_category_account_revenue = accounts["revenue"]
    account_config.save()
    Category = Model.get("product.category")
    category = Category(name="物料", accounting=True)
    category.account_expense = accounts["expense"]
    category.account_revenue = accounts["revenue"]
    category.save()

    Uom = Model.get("product.uom")
    Template = Model.get("product.template")
    (unit,) = Uom.find([("name", "=", "Unit")])
    products = {}
    for code, name, price in (("SKU-123", "伺服电机", "3200"), ("SKU-456", "导轨", "880.50")):
        template = Template(name=name, default_uom=unit, type="goods", purchasable=True, salable=True)
        template.list_price = Decimal(price)
        template.account_category = category
        template.code = code
        (product,) = template.products
        product.cost_price = Decimal(price)
        template.save()
        (product,) = template.products
        products[code] = product

    Location = Model.get("stock.location")
    (warehouse,) = Location.find([("code", "=", "WH")])
    warehouse.name = "上海仓"
    warehouse.code = "SH"
    warehouse.save()
    (supplier_loc,) = Location.find([("code", "=", "SUP")])
    second = Location(name="北京仓", code="BJ", type="warehouse")
    for attr, kind in (("input_location", "storage"), ("output_location", "storage"), ("storage_location", "storage")):
        location = Location(name=f"北京仓 {attr}", type=kind)
        location.save()
        setattr(second, attr, location)
    second.save()
    for loc in (second.input_location, second.output_location, second.storage_location):
        loc.parent = second
        loc.save()

    Move = Model.get("stock.move")
    moves = []
    for product, wh, qty in (
        (products["SKU-123"], warehouse, 12),
        (products["SKU-123"], second, 3),
        (products["SKU-456"], warehouse, 40),
    ):
        move = Move(product=product, quantity=qty, unit=unit, from_location=supplier_loc)
        move.to_location = wh.storage_location
        move.unit_price = product.cost_price
        move.currency = cny
        move.company = company
        move.save()
        moves.append(move)
    Move.click(moves, "do")

    Requisition = Model.get("purchase.requisition")
    requisition = Requisition(description="紧急采购: 伺服电机", employee=requester_employee)
    requisition.supply_date = company_today() + dt.timedelta(days=7)
    requisition.warehouse = warehouse
    requisition.currency = cny
    line = requisition.lines.new()
    line.product = products["SKU-123"]
    line.description = "伺服电机"
    line.quantity = 4
    line.unit = unit
    line.unit_price = Decimal("3200")
    requisition.save()
    requisition.click("wait")

    customer = Party(name="华东机械")
    customer.save()
    Sale = Model.get("sale.sale")
    sale = Sale(party=customer)
    sale.currency = cny
    sale.warehouse = warehouse
    sale_line = sale.lines.new()
    sale_line.product = products["SKU-456"]
    sale_line.quantity = 2
    sale.save()
    sale.click("quote")

    # A posted customer invoice for receivables: 5 × SKU-123, due 30 days after its date.
    from trytond.modules.account.tests.tools import create_fiscalyear
    from trytond.modules.account_invoice.tests.tools import set_fiscalyear_invoice_sequences

    today = company_today()
    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(company, today=today))
    fiscalyear.click("create_period")
    invoice_date = max(today - dt.timedelta(days=40), dt.date(today.year, 1, 1))  # inside this fiscal year
    PaymentTerm = Model.get("account.invoice.payment_term")
    term = PaymentTerm(name="30 天")
    term_line = term.lines.new(type="remainder")
    term_line.relativedeltas.new(days=30)
    term.save()
    Invoice = Model.get("account.invoice")
    invoice = Invoice(type="out", party=customer, payment_term=term, invoice_date=invoice_date, currency=cny)
    invoice_line = invoice.lines.new()
    invoice_line.product = products["SKU-123"]
    invoice_line.quantity = 5
    invoice_line.unit_price = Decimal("3200")
    invoice.save()
    invoice.click("post")

    # Two suppliers of SKU-123, each with a confirmed purchase whose incoming move waits for delivery
    # (the supplier's contact confirms its date from the group board).
    Purchase = Model.get("purchase.purchase")
    purchases = {}
    ProductSupplier = Model.get("purchase.product_supplier")
    for supplier_name, contact, email, number_qty, price, days in (
        ("精工电机", "刘伟", SUPPLIER_EMAIL, 10, "3000", 14),
        ("华南传动", "", OTHER_SUPPLIER_EMAIL, 5, "3100", 21),
    ):
        supplier = Party(name=supplier_name)
        supplier.contact_mechanisms.new(type="email", value=email, name=contact)
        supplier.save()
        if contact:  # the item's own supplier (the first one Tryton proposes for SKU-123)
            ProductSupplier(template=products["SKU-123"].template, party=supplier, lead_time=dt.timedelta(days=14)
                            ).save()
        purchase = Purchase(party=supplier, currency=cny, warehouse=warehouse, invoice_method="manual")
        purchase.purchase_date = today
        purchase.delivery_date = today + dt.timedelta(days=days)
        purchase_line = purchase.lines.new()
        purchase_line.product = products["SKU-123"]
        purchase_line.quantity = number_qty
        purchase_line.unit_price = Decimal(price)
        purchase.save()
        purchase.click("quote")
        purchase.click("confirm")
        purchase.reload()
        purchases[email] = {"number": purchase.number, "line": purchase.lines[0].id, "state": purchase.state}

    return {
        "company": company.id,
        "purchases": purchases,
        "warehouses": {"SH": warehouse.id, "BJ": second.id},
        "products": {code: p.id for code, p in products.items()},
        "requisition": requisition.id,
        "requisition_number": requisition.number,
        "sale": sale.id,
        "invoice_number": invoice.number,
        "invoice_due": (invoice_date + dt.timedelta(days=30)).isoformat(),
        "employees": {"li.si": approver_employee.id, "zhang.san": requester_employee.id},
        "unit": unit.id,
        "currency": cny.id,
    }


if __name__ == "__main__":
    print(json.dumps(seed(sys.argv[1], sys.argv[2])))  # noqa: T201
