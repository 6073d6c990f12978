"""Published JSON Schemas of the approval event types' ``data`` (served at /api/events/)."""

DECIMAL = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["12800.00"]}

APPROVAL_REQUESTED = {
    "type": "object",
    "required": ["document", "approvers"],
    "properties": {
        "document": {
            "type": "object",
            "required": ["id", "kind", "title", "amount", "requester"],
            "properties": {
                "id": {"type": "string", "maxLength": 100, "examples": ["PR-2026-0042"]},
                "kind": {"type": "string", "examples": ["purchase_requisition", "expense_claim"]},
                "title": {"type": "string", "maxLength": 300, "examples": ["紧急采购: 伺服电机"]},
                "amount": DECIMAL,
                "currency": {"type": "string", "minLength": 3, "maxLength": 3, "default": "CNY"},
                "requester": {"type": "string", "description": "ERP login", "examples": ["zhang.san"]},
                "project": {"type": "string", "examples": ["项目A"]},
                "cost_center": {"type": "string", "examples": ["CC-100"]},
                "department": {"type": "string", "description": "defaults to the requester's ERP department",
                               "examples": ["采购部"]},
                "urgent": {"type": "boolean", "default": False},
                "urgent_reason": {"type": "string", "maxLength": 500,
                                  "description": "why it is urgent, shown on the approval page",
                                  "examples": ["装配线停线待料 / assembly line waiting for parts"]},
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "qty", "unit_price"],
                        "properties": {
                            "sku": {"type": "string"},
                            "name": {"type": "string"},
                            "qty": DECIMAL,
                            "unit_price": DECIMAL,
                        },
                    },
                },
            },
        },
        "approvers": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "description": "ERP login"},
            "examples": [["li.si"]],
        },
        "step": {
            "type": "integer",
            "minimum": 1,
            "maximum": 50,
            "default": 1,
            "description": "multi-step approvals: send the document again with the next step and its approvers "
            "once the previous step is approved; one person decides at most one step",
        },
    },
}

APPROVAL_DECIDED = {
    "type": "object",
    "required": ["document", "outcome"],
    "properties": {
        "document": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string"}, "kind": {"type": "string"}},
        },
        "outcome": {"enum": ["approved", "rejected", "cancelled"]},
        "decided_by": {"type": "string", "description": "ERP login; required unless cancelled"},
        "decided_at": {"type": "string", "format": "date-time"},
        "comment": {"type": "string"},
    },
}
