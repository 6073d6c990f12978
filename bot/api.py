"""``POST /api/bot/ask``: the bot's whole pipeline without an IM (parser, selectors, answer, log)."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bot import services
from bot.models import BotExchange


class AskSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=1000, help_text="The question, in Chinese or English.")
    conversation = serializers.CharField(
        max_length=150, required=False, allow_blank=True, default="",
        help_text="Follow-ups (“那项目B呢?”) continue the last question of the same conversation for a few minutes.")


class CardFieldSerializer(serializers.Serializer):
    label = serializers.CharField()
    value = serializers.CharField()


class CardActionSerializer(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()
    style = serializers.CharField()


class CardSerializer(serializers.Serializer):
    topic = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    link = serializers.CharField(help_text="Portal path of the live widget for more, or empty.")
    amount = serializers.CharField()
    fields = CardFieldSerializer(many=True)
    actions = CardActionSerializer(many=True, help_text="“confirm”/“cancel” for a decision prepared by the bot.")
    note = serializers.CharField()


class AnswerSerializer(serializers.Serializer):
    text = serializers.CharField()
    card = CardSerializer()
    private = serializers.DictField(allow_null=True, help_text="The part only the asker may see (groups).")
    exchange = serializers.IntegerField(help_text="Id of the logged exchange; its buttons: …/exchanges/<id>/actions/")


class ReplySerializer(serializers.Serializer):
    intent = serializers.ChoiceField(choices=[
        "receivables", "stock", "orders", "approvals.pending", "approvals.decide", "approvals.status", "help",
        "unknown", "clarify", "refused"])
    entities = serializers.DictField(help_text="Resolved names (customer, project, sku, warehouse, order, document…) "
                                               "and the period with its exact dates in your time zone.")
    answer = AnswerSerializer()


class ActionResultSerializer(serializers.Serializer):
    result = serializers.CharField()


class Ask(APIView):
    @extend_schema(
        tags=["Bot"],
        summary="Ask the bot a question",
        description="Answers from the mirrored ERP data, only what you may see. “approve PR-…” returns a card with "
                    "a confirm button: nothing is decided until it is pressed.",
        request=AskSerializer,
        responses={200: ReplySerializer, 400: OpenApiResponse(description="Invalid input (problem+json)")},
        examples=[OpenApiExample("Receivables", value={"text": "项目A的收款情况"}, request_only=True),
                  OpenApiExample("Stock", value={"text": "SKU-123 还有多少库存"}, request_only=True)],
    )
    def post(self, request) -> Response:
        serializer = AskSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        conversation = f"api:{serializer.validated_data['conversation']}"
        reply = services.ask(request.user, serializer.validated_data["text"], conversation=conversation)
        return Response(reply.as_dict())


class Action(APIView):
    @extend_schema(
        tags=["Bot"],
        summary="Press a button of a bot answer (confirm or cancel a prepared decision)",
        request=None,
        responses={200: ActionResultSerializer, 404: OpenApiResponse(description="No such answer, or not yours")},
    )
    def post(self, request, pk: int, action_id: str) -> Response | JsonResponse:
        # The press carries no data, but a body that is not JSON is refused (400) before anything is
        # decided, like on every other endpoint: a mangled request is never taken as a "confirm".
        if "json" in (request.content_type or ""):
            request.data  # noqa: B018 - parsing it is the point
        # Someone else's answer and a missing one are the same 404.
        if action_id not in ("confirm", "cancel") or not BotExchange.objects.filter(pk=pk, user=request.user).exists():
            raise Http404()  # the same translated 404 as every other API's missing object
        return Response({"result": services.press(request.user, pk, action_id)})
