"""OpenAPI 3.1 document generated from the route table and the endpoints' docstrings."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "code": {"type": "string"}, "message": {"type": "string"}}, "required": ["code", "message"]}}}


def build(routes: list[Any], prefix: str = "") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        if isinstance(route, Mount):
            sub = build(list(route.routes or []), prefix + route.path)
            paths.update(sub["paths"])
            continue
        if not isinstance(route, Route):
            continue
        path = prefix + route.path
        doc = (route.endpoint.__doc__ or "").strip()
        summary = doc.splitlines()[0] if doc else route.name
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op: dict[str, Any] = {
                "summary": summary, "description": doc, "operationId": f"{method.lower()}_{route.name}",
                "tags": [path.split("/")[3] if path.startswith("/api/v1/") else path.split("/")[1] or "root"],
                "responses": {"200": {"description": "OK"},
                              "4XX": {"description": "Error",
                                      "content": {"application/json": {"schema": ERROR}}}},
            }
            params = re.findall(r"{(\w+)}", path)
            if params:
                op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                    for p in params]
            if method in ("POST", "PUT", "PATCH"):
                op["requestBody"] = {"required": False, "content": {"application/json": {
                    "schema": {"type": "object"}}}}
            paths.setdefault(path, {})[method.lower()] = op
    return {"openapi": "3.1.0", "info": {"title": "alarmcloud API", "version": "1",
                                         "description": "Camera alarm cloud API; errors are "
                                                        "{\"error\": {\"code\", \"message\"}}."},
            "components": {"securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "ac_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "cameraUpload": {"type": "http", "scheme": "basic"}}},
            "paths": paths}


async def endpoint(request: Request) -> Response:
    """The OpenAPI schema of this deployment (core and plugin routes)."""
    return JSONResponse(build(list(request.app.routes)))
