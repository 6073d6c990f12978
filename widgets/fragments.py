"""Rendered fragments reused across requests, and ETag / 304 answers for live refetches.

A fragment's key names everything it shows: the caller passes what it read *after* authorization
(a document's pk, version and decision state; the stock levels this viewer may see and their
update times…) and anything viewer-specific rendered into it (the live source with its embed
token); the language and time zone are added here. So two viewers share a fragment only when it
is the same for both, and authorization still runs on every request, before the key is known.

The ETag is a digest of the key: a refetch whose ``If-None-Match`` names it is answered 304 with
nothing read or rendered beyond what the key needed. Responses stay ``private, no-store`` (personal
data): live.js keeps the ETag of what it shows and sends it itself.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils import timezone, translation
from django.utils.http import parse_etags
from django.utils.safestring import SafeString

logger = logging.getLogger(__name__)

# A key changes with every change of what it names; the lifetime only bounds the cache's size.
FRAGMENT_SECONDS = 600


def fragment_key(kind: str, *parts: object) -> str:
    """The key of a fragment of ``kind`` showing ``parts``, in the active language and time zone."""
    material = repr((parts, translation.get_language(), timezone.get_current_timezone_name()))
    return f"{kind}.{hashlib.blake2b(material.encode(), digest_size=16).hexdigest()}"


def etag(key: str) -> str:
    return f'"{key}"'


def not_modified(request: HttpRequest, key: str) -> bool:
    """Whether the client already shows the fragment of ``key`` (GZip middleware weakens ETags)."""
    header = request.headers.get("If-None-Match", "")
    return bool(header) and etag(key) in {tag.removeprefix("W/") for tag in parse_etags(header)}


def cached_html(key: str, render: Callable[[], str]) -> SafeString:
    """The fragment of ``key``, rendered by ``render`` only when no process rendered it yet."""
    name = f"fragment:{key}"
    try:
        html = cache.get(name)
    except Exception:  # a cache outage costs a render, never the page
        logger.exception("fragment cache unreadable")
        html = None
    if html is None:
        html = render()
        try:
            cache.set(name, html, FRAGMENT_SECONDS)
        except Exception:
            logger.exception("fragment cache unwritable")
    return SafeString(html)  # our own rendered template


def respond(request: HttpRequest, key: str, html: Callable[[], str]) -> HttpResponse:
    """304 when the client shows ``key`` already, else the (cached) fragment; both carry the ETag."""
    response = HttpResponseNotModified() if not_modified(request, key) else HttpResponse(html())
    response["ETag"] = etag(key)
    return response
