"""The API's request parser (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]).

A module of its own: DRF reads its settings when ``rest_framework.views`` is first imported, so the
parser must not live beside code that imports DRF's views (``portal.api``), or that import goes round
in a circle.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, but a body nested deeper than Python's recursion limit (50,000 ``[`` fit
    in a few kilobytes) is a 400 like any other malformed JSON, not a RecursionError and a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
