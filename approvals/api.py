"""Approval API for integrators and apps: my pending approvals, a document, decide."""

from __future__ import annotations

from django.db.models import prefetch_related_objects
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import selectors, services
from approvals.models import ApprovalDocument, ApprovalLine, Decision
from portal.api import problem


class LineSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApprovalLine
        fields = ["sku", "name", "qty", "unit_price"]


class DecisionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.get_username")

    class Meta:
        model = Decision
        fields = ["outcome", "comment", "actor", "via", "created_at", "writeback_status", "writeback_error"]


class DocumentSerializer(serializers.ModelSerializer):
    connector = serializers.CharField(source="connector.slug")
    lines = LineSerializer(many=True, read_only=True)
    decision = serializers.SerializerMethodField()
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = ApprovalDocument
        fields = [
            "id", "connector", "external_id", "kind", "title", "amount", "currency", "project", "urgent",
            "urgent_reason", "requester_login", "status", "version", "decided_by_name", "decided_at", "created_at",
            "url", "lines", "decision",
        ]

    @extend_schema(exclude=True)
    def get_decision(self, document: ApprovalDocument) -> dict | None:
        decision = self.context.get("decision")  # the one just made (Decide), else the current step's
        if decision is None or decision.document_id != document.pk or decision.step != document.step:
            decision = Decision.objects.filter(document=document, step=document.step).select_related("actor").first()
        return DecisionSerializer(decision).data if decision else None


class DecideSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Decision.Outcome.values)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    version = serializers.IntegerField(required=False, min_value=1,
                                       help_text="The version you saw; refused with 409 if it changed.")
    idempotency_key = serializers.CharField(required=False, max_length=100,
                                            help_text="Or the Idempotency-Key header.")


@extend_schema(tags=["Approvals"], summary="Documents waiting for my decision")
class PendingList(ListAPIView):
    serializer_class = DocumentSerializer

    def get_queryset(self):
        return selectors.pending_for(self.request.user).select_related("connector").prefetch_related("lines")


@extend_schema(tags=["Approvals"], summary="One document I may see (404 otherwise)")
class DocumentDetail(RetrieveAPIView):
    serializer_class = DocumentSerializer

    def get_object(self):
        document = selectors.document_for(self.request.user, self.kwargs["pk"])
        if document is None:
            raise Http404()
        return document


class Decide(APIView):
    @extend_schema(
        tags=["Approvals"],
        summary="Approve or reject (idempotent)",
        request=DecideSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={
            201: DocumentSerializer,
            200: OpenApiResponse(DocumentSerializer, description="Same idempotency key again: the first result"),
            400: OpenApiResponse(description="Invalid input (problem+json)"),
            403: OpenApiResponse(description="You may see it but not decide it"),
            404: OpenApiResponse(description="No such document, or not yours"),
            409: OpenApiResponse(description="Already decided, or changed since the version you saw"),
        },
    )
    def post(self, request, pk: int):
        serializer = DecideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key") or serializer.validated_data.get("idempotency_key")
        if not key:
            return problem(400, "Idempotency key required", "send an Idempotency-Key header or idempotency_key")
        try:
            result = services.decide(
                request.user,
                pk,
                serializer.validated_data["outcome"],
                comment=serializer.validated_data["comment"],
                idempotency_key=key,
                expected_version=serializer.validated_data.get("version"),
                via="api",
            )
        except services.DecisionError as exc:
            return problem(exc.status, exc.message)
        if result.document is not None:
            # A fresh decision: the document as it left it, already checked (reading it again, with its
            # approvers for the check and the decision, was a fifth of the request).
            document, context = result.document, {"decision": result.decision}
            prefetch_related_objects([document], "lines")
        else:
            document, context = selectors.document_for(request.user, pk), {}
        return Response(
            DocumentSerializer(document, context=context).data,
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
        )
