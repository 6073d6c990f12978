"""/metrics: Prometheus text for those allowed to scrape it, nothing for anyone else."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView


def may_scrape(request: HttpRequest) -> bool:
    """A bearer token equal to METRICS_TOKEN, or a direct connection from METRICS_ALLOWED_IPS.

    The address rule applies only to requests that came in without a proxy's forwarding headers:
    behind a reverse proxy every request comes from the proxy's address, internet ones included.
    """
    token = settings.METRICS_TOKEN
    authorization = request.headers.get("Authorization", "")
    if token and authorization.startswith("Bearer "):
        return hmac.compare_digest(authorization.removeprefix("Bearer ").encode(), token.encode())
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(allowed, strict=False) for allowed in settings.METRICS_ALLOWED_IPS)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    # django-prometheus's exporter: the default registry, or every process's values when
    # PROMETHEUS_MULTIPROC_DIR is set.
    return ExportToDjangoView(request)
