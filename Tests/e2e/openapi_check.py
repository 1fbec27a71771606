"""Checks responses against Hostinger's OpenAPI document with openapi-schema-validator."""

import json
import re
from pathlib import Path

from openapi_schema_validator import OAS30Validator

DOCUMENT_PATH = Path(__file__).resolve().parent / "fixtures/openapi-vps.json"
DOCUMENT = json.loads(DOCUMENT_PATH.read_text())

# Statuses the document does not declare but hostinger/NOTES.md lists as seen in practice.
SEEN_IN_PRACTICE = {
    403: "Common.Response.ErrorResponse",   # [VPS:2000] Unauthorized, or the CDN's HTML page
    404: "Common.Response.ErrorResponse",   # [VPS:2002] Route is not found., unknown routes and ids
    422: "Common.Response.UnprocessableContentResponse",  # [VPS:2004] Wrong hostname FQDN format
    429: "Common.Response.ErrorResponse",   # rate limits exist; no body is documented, the error shape is assumed
    502: None, 503: None, 504: None,        # the CDN's HTML pages, or Hostinger's error shape
}


def _resolve(node):
    if isinstance(node, dict):
        if "$ref" in node:
            target = DOCUMENT
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _resolve(target)
        resolved = {k: _resolve(v) for k, v in node.items()}
        # The document marks references nullable as {"oneOf": [ref], "nullable": true}; OAS 3.0
        # validators apply `nullable` only beside `type`, so carry it into the alternatives.
        if resolved.get("nullable") and "oneOf" in resolved:
            resolved["oneOf"] = [dict(alternative, nullable=True) for alternative in resolved["oneOf"]]
        return resolved
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


def _operation(method: str, path: str):
    for template, operations in DOCUMENT["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return template, operations[method.lower()]
    raise AssertionError(f"{method} {path} is not in Hostinger's OpenAPI document")


def validate(method: str, path: str, status: int, content_type: str, body) -> str:
    """Validates one response; returns the OpenAPI path template it matched."""
    template, operation = _operation(method, path.split("?")[0])
    declared = operation["responses"].get(str(status))
    if declared is None:
        assert status in SEEN_IN_PRACTICE, f"{method} {template}: status {status} is neither declared nor seen in practice"
        name = SEEN_IN_PRACTICE[status]
        if "html" in content_type:
            assert status in (403, 502, 503, 504), f"HTML body with status {status}"
            return template
        declared = DOCUMENT["components"]["responses"][name] if name else DOCUMENT["components"]["responses"]["Common.Response.ErrorResponse"]
    declared = _resolve(declared)
    schema = declared["content"]["application/json"]["schema"]
    assert content_type.startswith("application/json"), f"{method} {template} {status}: content type {content_type}"
    OAS30Validator(schema).validate(body)
    if status >= 400:
        # Hostinger's errors always carry both, though the document does not mark them required.
        assert isinstance(body.get("message"), str) and isinstance(body.get("correlation_id"), str), body
    return template
