"""The web pages of cases (``alarmcloud.cases``): the owner's list of cases and one case with its clips."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from alarmcloud import auth
from alarmcloud.auth import User
from alarmcloud.cases import MAX_CASES, MAX_NOTES, case_detail, case_for, owner_cases, shared_case
from alarmcloud.errors import ApiError
from alarmcloud.web.pages import group_series, page_user, render, to_login


def _not_owner(request: Request, user: User) -> Response:
    return render(request, "error.html", user, status=403, title="Cases are the account owner's",
                  message="The account owner collects clips into cases. Ask them to share a case's download "
                          "with you.")


async def _owner(request: Request) -> User | Response:
    """The signed-in owner, or the page to show instead (the login for no one, a 403 page for a sub-user)."""
    user = await page_user(request)
    if user is None:
        return to_login(request)
    if user.account.owner_id is not None:
        return _not_owner(request, user)
    return user


async def cases_page(request: Request) -> Response:
    """The owner's cases, and a form for a new one."""
    user = await _owner(request)
    if isinstance(user, Response):
        return user
    app = auth.core(request)
    return render(request, "cases.html", user, cases=await app.db.run(lambda s: owner_cases(s, user)),
                  limit=MAX_CASES)


async def case_page(request: Request) -> Response:
    """One case: its name and notes, its clips, its download."""
    user = await _owner(request)
    if isinstance(user, Response):
        return user
    app = auth.core(request)
    cid = request.path_params["case_id"]

    def _load(s: Session) -> dict[str, Any] | None:
        try:
            return case_detail(s, user, case_for(s, user, cid))
        except ApiError:
            return None

    case = await app.db.run(_load)
    if case is None:
        return render(request, "error.html", user, status=404, title="Case not found",
                      message="This case does not exist or was deleted.")
    return render(request, "case.html", user, case=case, groups=group_series(case["events"]),
                  notes_max=MAX_NOTES, share_links=app.settings.privacy.case_links)


async def shared_page(request: Request) -> Response:
    """What a case's link shows someone without an account: the case, its notes and its download."""
    app = auth.core(request)
    token = request.path_params["token"]

    def _load(s: Session) -> dict[str, Any] | str:
        try:
            case, owner = shared_case(s, app, token)
        except ApiError as exc:
            return exc.code
        return case_detail(s, owner, case)

    case = await app.db.run(_load)
    user = await page_user(request, gate=False)  # the nav of a signed-in visitor; the page is the same for everyone
    if isinstance(case, str):
        expired = case in ("link_expired", "link_used_up")
        title = {"link_expired": "This link has expired",
                 "link_used_up": "This link was downloaded as often as it allows"}.get(case,
                                                                                    "Nothing is shared with this link")
        response = render(request, "error.html", user, status=410 if expired else 404, title=title,
                          message="Ask whoever sent it for a new link." if expired else
                          "The link was stopped or replaced, or it is not complete. Ask whoever sent it for a new one.")
    else:
        response = render(request, "shared_case.html", user, case=case, token=token,
                          camera_names=sorted({e["camera_name"] or "Camera" for e in case["events"]}))
    response.headers["X-Robots-Tag"] = "noindex"
    return response
