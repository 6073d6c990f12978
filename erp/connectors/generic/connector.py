"""A connector for any ERP that sends webhooks and answers REST, configured in admin.

Events come in through the signed intake like any ERP's (``POST /api/erp/<slug>/events``); this
connector only reads a document and writes a decision back, as ``ConnectorSettings.options``
describes (``erp.connectors.generic.config``). The idempotency key travels in a header
(``Idempotency-Key`` by default, as in the IETF draft) and may be put in the body too: the ERP is
expected to apply a key once and answer a repeat with the first result, or with a configured
conflict status.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from erp.connectors.base import (
    TEST_CONNECTION,
    ConnectionCheck,
    ConnectorError,
    DecisionConflict,
    DocumentLine,
    DocumentSnapshot,
    ErpUser,
    Outcome,
    WritebackResult,
)

from .config import GenericConfig, parse_config, render, resolve

# Test seam: the transport every connector uses when none is passed (tests set an httpx.MockTransport).
default_transport: httpx.BaseTransport | None = None


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = parse_datetime(str(value))
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


class GenericConnector:
    capabilities = frozenset({TEST_CONNECTION})

    def __init__(self, settings: Any = None, *, config: GenericConfig | None = None, base_url: str = "",
                 token: str = "", transport: httpx.BaseTransport | None = None, slug: str = "generic") -> None:
        if settings is not None:
            config = parse_config(settings.options)
            base_url, token, slug = settings.base_url, settings.get_password(), settings.connector.slug
        if config is None:
            raise ConnectorError(_("This generic connector has no configuration."), permanent=True)
        self.config = config
        self.slug = slug
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers[config.auth_header] = f"{config.auth_prefix}{token}"
        self._http = httpx.Client(timeout=15.0, transport=transport or default_transport, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, url: str, *, json: Any = None, headers: dict[str, str] | None = None,
              doing: str) -> httpx.Response:
        try:
            response = self._http.request(method, self.base_url + url, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"ERP unreachable ({doing}): {exc.__class__.__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise ConnectorError(f"ERP {doing}: HTTP {response.status_code}, try later")
        return response

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def _url(self, template: str, external_id: str) -> str:
        return template.format_map({"id": quote(external_id, safe="")})

    # --- documents ------------------------------------------------------------------------

    def read_document(self, external_id: str) -> DocumentSnapshot | None:
        read = self.config.read
        response = self._send("GET", self._url(read.url, external_id), doing=f"read {external_id}")
        if response.status_code in read.not_found_status:
            return None
        if response.status_code >= 400:
            raise ConnectorError(f"ERP refused to read {external_id}: HTTP {response.status_code}", permanent=True)
        doc = resolve(self._json(response), read.root)
        if not isinstance(doc, dict):
            raise ConnectorError(f"ERP answer for {external_id} holds no document at “{read.root or '.'}”",
                                 permanent=True)
        value = {name: resolve(doc, path) for name, path in read.fields.items()}
        raw_state = str(value.get("state") if value.get("state") is not None else "")
        state = next((name for name, values in read.states.items() if raw_state in values), None)
        if state is None:
            raise ConnectorError(f"ERP state {raw_state!r} of {external_id} is not mapped in read.states",
                                 permanent=True)
        lines: list[DocumentLine] = []
        if read.lines:
            paths = read.lines
            for row in resolve(doc, paths["path"]) or []:
                lines.append(DocumentLine(
                    sku=str(resolve(row, paths["sku"]) or "") if "sku" in paths else "",
                    name=str(resolve(row, paths["name"]) or "") if "name" in paths else "",
                    qty=_dec(resolve(row, paths["qty"])) if "qty" in paths else Decimal(1),
                    unit_price=_dec(resolve(row, paths["unit_price"])) if "unit_price" in paths else Decimal(0),
                ))
        approvers = value.get("approvers") or []
        return DocumentSnapshot(
            id=str(value.get("id") or external_id),
            kind=str(value.get("kind") or self.config.kind),
            title=str(value.get("title") or external_id),
            amount=_dec(value.get("amount")),
            currency=str(value.get("currency") or ""),
            requester=str(value.get("requester") or ""),
            project=str(value.get("project") or ""),
            state=state,
            approvers=[str(a) for a in (approvers if isinstance(approvers, list) else [approvers]) if a],
            lines=lines,
            decided_by=str(value.get("decided_by") or ""),
            decided_at=_time(value.get("decided_at")),
        )

    # --- decisions ------------------------------------------------------------------------

    def decide(
        self, external_id: str, outcome: Outcome, *, actor: str, comment: str, idempotency_key: str,
    ) -> WritebackResult:
        call = self.config.decide
        if outcome not in call.outcomes:
            raise ConnectorError(f"unknown outcome {outcome!r}", permanent=True)
        if not idempotency_key:
            raise ConnectorError("an idempotency key is required", permanent=True)
        values = {"id": external_id, "outcome": call.outcomes[outcome], "actor": actor, "comment": comment,
                  "idempotency_key": idempotency_key}
        body = render(call.body, values) if call.method != "GET" else None
        headers = {call.idempotency_header: idempotency_key} if call.idempotency_header else {}
        response = self._send(call.method, self._url(call.url, external_id), json=body, headers=headers,
                              doing=f"decide {external_id}")
        answer = self._json(response)
        if response.status_code in call.conflict_status:
            snapshot = self.read_document(external_id)
            if snapshot is not None and snapshot.state != "pending":
                raise DecisionConflict(snapshot.state, snapshot.decided_by, snapshot.decided_at)
            raise DecisionConflict("decided", "", None)
        if response.status_code not in call.success_status:
            detail = response.text[:300]
            raise ConnectorError(f"ERP refused the decision on {external_id}: HTTP {response.status_code} {detail}",
                                 permanent=True)
        result = {name: resolve(answer, path) for name, path in call.result.items()}
        return WritebackResult(
            outcome=outcome,
            decided_by=str(result.get("decided_by") or actor),
            decided_at=_time(result.get("decided_at")) or dt.datetime.now(dt.UTC),
            erp_reference=str(result.get("reference") or ""),
            replayed=bool(result.get("replayed")),
        )

    def users(self) -> list[ErpUser]:
        """Not configurable yet: identities are linked in admin (ERP identities) for this kind. An
        error, not an empty list: the role sync would otherwise take every linked identity's roles."""
        raise ConnectorError(_("The generic connector lists no ERP accounts: link ERP identities in admin."),
                             permanent=True)

    # --- test connection ------------------------------------------------------------------

    def test_connection(self) -> list[ConnectionCheck]:
        checks = [ConnectionCheck(_("configuration"), True, _("read %(read)s; decide %(method)s %(decide)s") % {
            "read": self.config.read.url, "method": self.config.decide.method, "decide": self.config.decide.url})]
        if not self.config.test_document:
            checks.append(ConnectionCheck(_("read a document"), False,
                                          _("set “test_document” to a document id to try the read call"), "documents"))
        else:
            try:
                snapshot = self.read_document(self.config.test_document)
                ok = snapshot is not None
                detail = (f"{snapshot.id}: {snapshot.title} ({snapshot.state})" if snapshot
                          else _("the ERP does not know %(id)s") % {"id": self.config.test_document})
                checks.append(ConnectionCheck(_("read a document"), ok, detail, "documents"))
            except ConnectorError as exc:
                checks.append(ConnectionCheck(_("read a document"), False, str(exc), "documents"))
        # Deciding changes the ERP: it is configured, never tried from here.
        checks.append(ConnectionCheck(_("decide"), True, _("configured, not tried (it would change the ERP)"),
                                      "decide"))
        return checks
