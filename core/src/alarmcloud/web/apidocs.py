"""The API reference page (``/api-docs``): the deployment's own OpenAPI document as a readable page.

Rendered on the server from the same document ``/openapi.json`` serves (core and plugin routes), with no script
and nothing from other sites (no Swagger UI from a CDN): offline installs and the privacy promise hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import Response

from alarmcloud import openapi
from alarmcloud.web.pages import page_user, render

#: tags shown first, in this order (what most scripts want); the others follow alphabetically
FIRST_TAGS = ("events", "cameras", "ingest", "series", "storage", "plates", "webhooks", "tokens", "me")
TAG_TITLES = {"events": "Events and clips", "cameras": "Cameras", "ingest": "Uploads from cameras",
              "series": "Alarm series", "storage": "Storage", "plates": "Known plates", "webhooks": "Webhooks",
              "tokens": "API tokens", "me": "Your account", "auth": "Logging in", "subusers": "Sub-users",
              "downloads": "Downloads", "stats": "Statistics", "privacy": "Privacy", "operator": "Operators",
              "admin": "Operators: released clips", "camera-models": "Camera models", "oauth": "OAuth 2.0",
              ".well-known": "OAuth 2.0 metadata", "plugins": "Smart-home and camera platforms",
              "-": "Health and plugins", "metrics": "Metrics", "openapi.json": "This reference"}


def prose(text: str) -> Markup:
    """Docstring text as HTML: escaped, with its ``code`` marks (reStructuredText's double backticks, or single
    ones) as <code>."""
    html = str(escape(text))
    html = re.sub(r"``(.+?)``", r"<code>\1</code>", html)
    return Markup(re.sub(r"(?<![\w`])`([^`\n]+?)`(?![\w`])", r"<code>\1</code>", html))


@dataclass
class Field:
    """One field of a JSON body or answer, as the page lists it."""

    name: str
    type: str
    required: bool
    description: Markup = Markup("")
    children: list[Field] = field(default_factory=list)


def type_of(schema: dict[str, Any]) -> str:
    """A short type for people: "string", "integer or null", "one of a, b", "list of object", with its limits
    ("integer, 1 to 200, default 50")."""
    limits = []
    if "minimum" in schema or "maximum" in schema:
        limits.append(f"{schema.get('minimum', '…')} to {schema.get('maximum', '…')}")
    if "maxLength" in schema:
        limits.append(f"at most {schema['maxLength']} characters")
    if "default" in schema:
        limits.append(f"default {schema['default']}")
    return ", ".join([_kind(schema), *limits])


def _kind(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join("null" if v is None else str(v) for v in schema["enum"])
    if "const" in schema:
        return f"always {schema['const']}"
    if "oneOf" in schema:
        return " or ".join(type_of(s) for s in schema["oneOf"])
    t = schema.get("type")
    if isinstance(t, list):
        return " or ".join(t)
    if t == "array":
        return "list of " + type_of(schema.get("items") or {})
    if t == "object" and isinstance(schema.get("additionalProperties"), dict) and not schema.get("properties"):
        return "map of " + type_of(schema["additionalProperties"])
    return str(t or "any")


def fields_of(schema: dict[str, Any] | None, depth: int = 0) -> list[Field]:
    """The named fields of an object schema (of its items for a list, of its non-null branch for a oneOf), with
    their own fields three levels deep."""
    if not schema:
        return []
    if schema.get("type") == "array":
        return fields_of(schema.get("items"), depth)
    if "oneOf" in schema:
        branch = next((s for s in schema["oneOf"] if s.get("type") != "null"), None)
        return fields_of(branch, depth)
    required = set(schema.get("required", []))
    out = []
    for name, sub in (schema.get("properties") or {}).items():
        out.append(Field(name, type_of(sub), name in required, prose(sub.get("description", "")),
                         fields_of(sub, depth + 1) if depth < 2 else []))
    return out


def _after(description: str, summary: str) -> str:
    """The description without the summary it starts with (the page shows the summary above it)."""
    if description.startswith(summary):
        return description[len(summary):].lstrip(".").strip()
    return description


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's operations grouped by tag, the web UI's pages left out, each group's operations in the
    order of the route table."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            tag = op["tags"][0]
            if tag == "web-ui":
                continue
            body = op.get("requestBody", {}).get("content", {})
            media, body_schema = next(iter(body.items()), (None, {}))
            responses = []
            # by status, each range (4XX) after the codes it holds
            for code, answer in sorted(op["responses"].items(), key=lambda kv: (kv[0][0], "X" in kv[0], kv[0])):
                content = answer.get("content", {})
                kind, schema = next(iter(content.items()), (None, {}))
                responses.append({"code": code, "description": prose(answer.get("description", "")), "media": kind,
                                  "fields": fields_of(schema.get("schema")) if kind == "application/json" else []})
            groups.setdefault(tag, []).append({
                "id": op["operationId"], "method": method.upper(), "path": path, "summary": prose(op["summary"]),
                "description": prose(_after(op["description"], op["summary"])),
                "parameters": [{**p, "type": type_of(p.get("schema", {})), "description": prose(
                    p.get("description", ""))} for p in op.get("parameters", [])],
                "body_media": media, "body_required": op.get("requestBody", {}).get("required", False),
                "body": fields_of((body_schema or {}).get("schema")) if media in (
                    "application/json", "application/x-www-form-urlencoded") else [],
                "security": [next(iter(s)) for s in op.get("security", [])], "responses": responses})
    order = [t for t in FIRST_TAGS if t in groups] + sorted(t for t in groups if t not in FIRST_TAGS)
    return [{"tag": t, "title": TAG_TITLES.get(t, t), "operations": groups[t]} for t in order]


async def api_docs_page(request: Request) -> Response:
    """The API reference (no login needed, like ``/openapi.json``)."""
    doc = openapi.build(list(request.app.routes))
    core = request.app.state.alarmcloud
    return render(request, "api_docs.html", await page_user(request, gate=False), groups=operations(doc),
                  base=core.settings.public_url.rstrip("/"), count=sum(len(ops) for ops in doc["paths"].values()))
