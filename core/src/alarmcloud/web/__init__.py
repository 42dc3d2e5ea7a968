"""Web UI: server-rendered Jinja2 pages over the core's data, a small vanilla JS file for actions.

Pages read the database directly (same tenant rules as the API); every change goes through the JSON API from
``static/app.js`` with the ``X-CSRF-Token`` header, so the UI has no write path of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from alarmcloud.web import apidocs, casepages, charts, operator, pages

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

HERE = Path(__file__).parent


def routes(core: AlarmCloud) -> list[BaseRoute]:
    """The UI's routes, mounted by ``create_app``."""
    R = Route  # noqa: N806
    return [
        R("/", pages.timeline, methods=["GET"]),
        R("/login", pages.login, methods=["GET"]),
        R("/signup", pages.signup, methods=["GET"]),
        R("/events/{event_id}", pages.clip_page, methods=["GET"]),
        R("/cameras", pages.cameras_page, methods=["GET"]),
        R("/cameras/{camera_id}", pages.camera_page, methods=["GET"]),
        R("/storage", pages.storage_page, methods=["GET"]),
        R("/links", pages.links_page, methods=["GET"]),
        R("/account", pages.account_page, methods=["GET"]),
        R("/notifications", pages.notifications_page, methods=["GET"]),
        R("/plates", pages.plates_page, methods=["GET"]),
        R("/cases", casepages.cases_page, methods=["GET"]),
        R("/cases/{case_id}", casepages.case_page, methods=["GET"]),
        R("/shared/{token}", casepages.shared_page, methods=["GET"]),
        R("/privacy-center", pages.privacy_page, methods=["GET"]),
        R("/operator", pages.operator_page, methods=["GET"]),
        R("/api-docs", apidocs.api_docs_page, methods=["GET"]),
        R("/api/v1/stats", charts.stats_endpoint, methods=["GET"]),
        R("/api/v1/operator/cameras/{camera_id}/fair-use", operator.set_fair_use, methods=["PUT"]),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
