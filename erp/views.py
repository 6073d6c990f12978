from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from erp.events import EVENT_SCHEMAS
from erp.intake import IntakeError, receive
from portal.api import problem

SIGNATURE_HEADERS = [
    OpenApiParameter("webhook-id", str, OpenApiParameter.HEADER, required=True,
                     description="Unique message id; a redelivery with the same id changes nothing."),
    OpenApiParameter("webhook-timestamp", str, OpenApiParameter.HEADER, required=True,
                     description="Unix seconds; refused when more than 5 minutes off."),
    OpenApiParameter("webhook-signature", str, OpenApiParameter.HEADER, required=True,
                     description="Standard Webhooks signature: v1,base64(HMAC-SHA256(secret, id.timestamp.body))."),
]
EXAMPLE = {
    "specversion": "1.0",
    "id": "evt-0001",
    "source": "urn:erp:demo",
    "type": "erp.approval.requested",
    "time": "2026-11-25T10:00:00+08:00",
    "datacontenttype": "application/json",
    "data": {
        "document": {
            "id": "PR-2026-0042", "kind": "purchase_requisition", "title": "紧急采购: 伺服电机",
            "amount": "12800.00", "currency": "CNY", "requester": "zhang.san", "project": "项目A",
            "lines": [{"sku": "SKU-123", "name": "伺服电机", "qty": "4", "unit_price": "3200.00"}],
        },
        "approvers": ["li.si"],
    },
}


class RawBodyParser(BaseParser):
    """Leave the body alone: the signature is over the exact bytes."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return None


class EventIntakeView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [RawBodyParser]

    @extend_schema(
        operation_id="erp_event_intake",
        summary="Send one ERP event (CloudEvents 1.0, signed per Standard Webhooks)",
        description="Event types and the schema of their `data`: GET /api/events/.",
        parameters=SIGNATURE_HEADERS,
        request={"application/cloudevents+json": OpenApiTypes.OBJECT},
        examples=[OpenApiExample("erp.approval.requested", value=EXAMPLE, request_only=True)],
        responses={
            202: OpenApiResponse(description="Accepted (also for a repeated webhook-id): {\"id\": …}"),
            400: OpenApiResponse(description="Malformed JSON, not a CloudEvent, or invalid data (problem+json)"),
            401: OpenApiResponse(description="Missing or bad signature, or timestamp outside 5 minutes"),
            404: OpenApiResponse(description="Unknown connector"),
            413: OpenApiResponse(description="Body over 256 KB"),
        },
        tags=["ERP events"],
    )
    def post(self, request, connector: str):
        length = request.META.get("CONTENT_LENGTH")
        try:
            if length and int(length) > 256 * 1024:
                raise IntakeError(413, "Payload too large", "at most 262144 bytes")
            result = receive(connector, request.headers, request.body)
        except IntakeError as exc:
            return problem(exc.status, exc.title, exc.detail)
        except ValueError:
            return problem(400, "Bad request", "invalid Content-Length")
        return JsonResponse({"id": result.event_id, "duplicate": result.duplicate}, status=202)


@extend_schema(exclude=True)
def event_types(request: HttpRequest) -> JsonResponse:
    """The event types the intake accepts, with the JSON Schema of each one's ``data``."""
    return JsonResponse(
        {"specversion": "1.0", "signature": "Standard Webhooks (v1, HMAC-SHA256), 5-minute tolerance",
         "types": EVENT_SCHEMAS},
        json_dumps_params={"ensure_ascii": False, "indent": 2},
    )
