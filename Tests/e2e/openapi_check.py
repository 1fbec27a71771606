"""Checks responses against an OpenAPI document with openapi-schema-validator: Hostinger's
(for hostinger-sim) and vpsgate's own (for every vpsgate response in the end-to-end suite)."""

import json
import re
from pathlib import Path

from openapi_schema_validator import OAS30Validator, OAS31Validator

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT_PATH = Path(__file__).resolve().parent / "fixtures/openapi-vps.json"


class Document:
    def __init__(self, document: dict, seen_in_practice: dict | None = None):
        self.document = document
        self.seen_in_practice = seen_in_practice or {}
        self.validator = OAS31Validator if document["openapi"].startswith("3.1") else OAS30Validator
        self.templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", t) + "$"), t) for t in document["paths"]]

    def resolve(self, node):
        if isinstance(node, dict):
            if "$ref" in node:
                target = self.document
                for part in node["$ref"].lstrip("#/").split("/"):
                    target = target[part]
                return self.resolve(target)
            resolved = {k: self.resolve(v) for k, v in node.items()}
            # Hostinger marks references nullable as {"oneOf": [ref], "nullable": true}; OAS 3.0
            # validators apply `nullable` only beside `type`, so carry it into the alternatives.
            if resolved.get("nullable") and "oneOf" in resolved:
                resolved["oneOf"] = [dict(alternative, nullable=True) for alternative in resolved["oneOf"]]
            return resolved
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        return node

    def operation(self, method: str, path: str):
        path = path.split("?")[0]
        for pattern, template in self.templates:
            operations = self.document["paths"][template]
            if pattern.match(path) and method.lower() in operations:
                return template, operations[method.lower()]
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def validate(self, method: str, path: str, status: int, content_type: str, body) -> str:
        """Validates one response; returns the path template it matched. A path the document
        does not have may only answer a problem (404, or 401 before routing)."""
        try:
            template, operation = self.operation(method, path)
        except AssertionError:
            if "Problem" not in self.document.get("components", {}).get("schemas", {}):
                raise
            assert status in (401, 404, 405), f"{method} {path} is undocumented and answered {status}"
            assert content_type.startswith("application/problem+json"), content_type
            self.validator(self.resolve(self.document["components"]["schemas"]["Problem"])).validate(body)
            return ""
        declared = operation["responses"].get(str(status))
        if declared is None:
            assert status in self.seen_in_practice, f"{method} {template}: status {status} is neither declared nor seen in practice"
            if "html" in content_type:
                assert status in (403, 502, 503, 504), f"HTML body with status {status}"
                return template
            declared = self.document["components"]["responses"][self.seen_in_practice[status]]
        declared = self.resolve(declared)
        media = content_type.split(";")[0].strip()
        content = declared["content"]
        assert media in content, f"{method} {template} {status}: content type {content_type}, declared {list(content)}"
        self.validator(content[media]["schema"]).validate(body)
        return template


# Statuses Hostinger's document does not declare but docs/hostinger.md#protocol lists as seen in practice.
HOSTINGER = Document(json.loads(DOCUMENT_PATH.read_text()), {
    403: "Common.Response.ErrorResponse",   # [VPS:2000] Unauthorized, or the CDN's HTML page
    404: "Common.Response.ErrorResponse",   # [VPS:2002] Route is not found., unknown routes and ids
    422: "Common.Response.UnprocessableContentResponse",  # [VPS:2004] Wrong hostname FQDN format
    429: "Common.Response.ErrorResponse",   # rate limits exist; no body is documented, the error shape is assumed
    502: "Common.Response.ErrorResponse", 503: "Common.Response.ErrorResponse", 504: "Common.Response.ErrorResponse",
})
DOCUMENT = HOSTINGER.document

VPSGATE = Document(json.loads((ROOT / "docs/openapi.json").read_text()))


def validate(method, path, status, content_type, body):
    """Hostinger's document, with its errors' usual members."""
    template = HOSTINGER.validate(method, path, status, content_type, body)
    if status >= 400 and "html" not in content_type:
        assert isinstance(body.get("message"), str) and isinstance(body.get("correlation_id"), str), body
    return template
