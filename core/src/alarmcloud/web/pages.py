"""Page handlers: log-in gate, then render a template with data read under the same tenant rules as the API."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from alarmcloud import auth, clipaccess, twofactor
from alarmcloud.auth import User
from alarmcloud.cameras import camera_json, detectors_json, source_advice, upload_source
from alarmcloud.cases import case_choices
from alarmcloud.errors import ApiError
from alarmcloud.eventsapi import MAX_KNOWN_PLATES, known_plates_listed, load_event, query_events
from alarmcloud.models import Account, Camera, Case, Clip, FindingRow, Rejection, iso
from alarmcloud.notify import normalize_plate
from alarmcloud.sessionsapi import session_list
from alarmcloud.snooze import snooze_json
from alarmcloud.specs import DetectorSpec, title_of
from alarmcloud.storage import kept_bytes, kept_limit_bytes, retention_days
from alarmcloud.units import human_bytes
from alarmcloud.web import charts, operator

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                          autoescape=jinja2.select_autoescape(("html",)), trim_blocks=True, lstrip_blocks=True)

#: the verdicts the core itself makes, as (text, badge class); detectors name their own false-alarm causes
#: (``DetectorSpec.verdict_titles``, see ``verdict_names``)
CORE_VERDICTS: dict[str, tuple[str, str]] = {
    "alarm": ("Real alarm", "alarm"),
    "false_alarm:no_motion": ("No motion", "quiet"),
    "analysis_failed": ("Analysis failed", "failed"),
}


def verdict_names(specs: Mapping[str, DetectorSpec] | None) -> dict[str, tuple[str, str]]:
    """Every verdict the web UI has words for: the core's and those the loaded detectors name, "Real alarm" first
    (the order of the timeline's verdict filter)."""
    named = {f"false_alarm:{label}": (text, "rain") for spec in (specs or {}).values()
             for label, text in spec.verdict_titles.items()}
    return {"alarm": CORE_VERDICTS["alarm"], **{v: t for v, t in named.items() if v not in CORE_VERDICTS},
            **{v: t for v, t in CORE_VERDICTS.items() if v != "alarm"}}


def _distinct(s: Session, column: Any, where: list[Any], visible: Callable[[Any], Any] | None, limit: int,
              after: str = "", known: frozenset[str] = frozenset()) -> list[str]:
    """The distinct values of ``column`` after ``after`` in the rows ``where`` selects that are not ``known``, in
    order, by a loose index scan: one lookup of the next value per value (an index on the ``where`` equality columns
    then ``column``), not a scan of the rows. ``visible(value)``: a query whose first row says the value is on a row
    the caller may see (None: all are)."""
    found: list[str] = []
    last = after
    for _ in range(limit + len(known)):
        if len(found) >= limit:
            break
        # the next value in the index's order, whatever the database's collation
        value = s.exec(select(column).where(*where, column > last).order_by(column).limit(1)).first()
        if value is None:
            break
        last = value
        if value not in known and (visible is None or s.exec(visible(value).limit(1)).first() is not None):
            found.append(value)
    return found


def stored_causes(s: Session, user: User, limit: int = 40, known: frozenset[str] = frozenset()) -> list[str]:
    """The false-alarm causes (``false_alarm:<label>``) the clips the user may see carry, other than ``known``, in
    order, one index lookup per cause (``ix_clips_account_verdict_started``). The timeline's verdict filter adds
    those no loaded detector names, so that the clips of a detector since removed can still be found by their
    cause."""
    ids = auth.visible_camera_ids(s, user)
    mine = [Clip.account_id == user.tenant_id, col(Clip.verdict).like("false_alarm:%")]
    return _distinct(s, col(Clip.verdict), mine, None if ids is None else lambda v: select(Clip.id).where(
        *mine, Clip.verdict == v, col(Clip.camera_id).in_(ids)), limit, "false_alarm:", known)


def stored_labels(s: Session, user: User, limit: int = 40, known: frozenset[str] = frozenset()) -> list[str]:
    """The finding labels on the clips the user may see, other than ``known``, in order, one index lookup per label
    (``ix_findings_account_label_text``): the label filter offers those of a detector since removed too."""
    ids = auth.visible_camera_ids(s, user)
    mine = [FindingRow.account_id == user.tenant_id]
    return _distinct(s, col(FindingRow.label), mine, None if ids is None else lambda v: select(FindingRow.id).join(
        Clip, col(Clip.id) == FindingRow.clip_id).where(*mine, FindingRow.label == v, col(Clip.camera_id).in_(ids)),
        limit, known=known)


def filter_verdicts(names: Mapping[str, tuple[str, str]], stored: list[str]) -> dict[str, str]:
    """The timeline's verdict filter: ``names`` (``verdict_names``) in their order, the stored causes no detector
    names now (as their badge reads) before the core's own "No motion" and "Analysis failed"."""
    extra = {v: verdict_badge(v, names=names)["text"] for v in stored if v not in names}
    first = {v: text for v, (text, _) in names.items() if v not in CORE_VERDICTS or v == "alarm"}
    return first | extra | {v: text for v, (text, _) in names.items() if v in CORE_VERDICTS and v != "alarm"}


PAGE_SIZE = 24
WEBHOOK_EVENT_LABELS = [
    ("detections.ready", "Clip analysed (verdict)"), ("clip.stored", "Clip received"),
    ("plate.recognised", "Licence plate read"), ("camera.fair_use_changed", "Fair-use state changed"),
    ("camera.view_obstructed", "Camera view obstructed (check the lens)"),
    ("camera.view_restored", "Camera view clear again"),
    ("camera.silent", "Camera sent no clip for a while"),
    ("camera.changed", "Camera changed"), ("camera.deleted", "Camera removed"),
    ("storage.almost_full", "Storage almost full"),
    ("offsite.failing", "Off-site copies not arriving"),
]


def verdict_badge(verdict: str | None, status: str | None = None,
                  names: Mapping[str, tuple[str, str]] = CORE_VERDICTS) -> dict[str, str]:
    """Text and class of a clip's verdict badge; ``names``: ``verdict_names`` of the deployment's detectors."""
    if verdict is None:
        return {"text": "Skipped" if status == "skipped" else "Analysing…", "cls": "pending"}
    if verdict in names:
        text, cls = names[verdict]
        return {"text": text, "cls": cls}
    if verdict.startswith("false_alarm:"):
        return {"text": "False alarm: " + verdict.split(":", 1)[1].replace("_", " "), "cls": "quiet"}
    return {"text": verdict.replace("_", " "), "cls": "quiet"}


def when(value: str | None) -> str:
    """ISO time as a short UTC string; the JS turns ``<time>`` elements into local time."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value


_env.filters.update(bytes=human_bytes, when=when, plate_key=normalize_plate)


async def page_user(request: Request, gate: bool = True) -> User | None:
    """The signed-in visitor, or None. Someone who must set up two-step verification first (the server requires
    it) is sent to the account page from every other page (``auth.TwoFactorFirst``); ``gate=False`` for pages
    that show the same to everyone (an error, a shared case)."""
    try:
        user = await auth.optional_user(request)
    except ApiError:
        return None
    if gate and user is not None and user.needs_two_factor and request.url.path != "/account":
        raise auth.TwoFactorFirst()
    return user


def to_login(request: Request) -> Response:
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?next=" + quote(nxt, safe=""), status_code=303)


def _titles(request: Request) -> dict[str, Any]:
    """Template functions that turn plugin entry names into the titles people read ("plates": "Licence plates")."""
    plugins = getattr(getattr(request.app.state, "alarmcloud", None), "plugins", None)
    groups = {"cameras": "camera_specs", "detectors": "detector_specs", "integrations": "integration_specs"}
    specs = {group: getattr(plugins, attr, None) or {} for group, attr in groups.items()}

    def plugin_title(group: str, name: str) -> str:
        return title_of(specs.get(group, {}).get(name), name)

    names = verdict_names(specs["detectors"])
    return {"plugin_title": plugin_title, "detector_title": lambda name: plugin_title("detectors", name),
            "brand_title": lambda name: plugin_title("cameras", name),
            "has_detector": lambda name: name in specs["detectors"],
            "verdicts": names, "verdict_badge": functools.partial(verdict_badge, names=names)}


def render(request: Request, name: str, user: User | None = None, status: int = 200, **ctx: Any) -> HTMLResponse:
    html = _env.get_template(name).render(request=request, user=user, path=request.url.path,
                                          **{**_titles(request), **ctx})
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
                                   "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})


ERROR_TEXTS = {404: ("Page not found", "There is no page at this address. It may have moved, or the link is wrong."),
               405: ("Not possible here", "This address cannot be used like that. Go back and try again.")}


async def error_page(request: Request, status: int, detail: str | None = None) -> Response:
    """An HTTP error (unknown address, wrong method) for a browser, as a page of the UI."""
    title, message = ERROR_TEXTS.get(status, (f"Error {status}", detail or "Something went wrong."))
    return render(request, "error.html", await page_user(request, gate=False), status=status, title=title,
                  message=message)


def _safe_next(raw: str | None) -> str:
    # same-site paths only: browsers read "/\host" and "/<tab>/host" as "//host" (an open redirect after login)
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw or any(c < " " for c in raw):
        return "/"
    return raw


# ---------------------------------------------------------------- accounts


async def login(request: Request) -> Response:
    user = await page_user(request)
    nxt = _safe_next(request.query_params.get("next"))
    if user is not None:
        return RedirectResponse(nxt, status_code=303)
    return render(request, "login.html", next=nxt)


async def signup(request: Request) -> Response:
    return render(request, "signup.html", user=await page_user(request),
                  open=auth.core(request).settings.registration_open)


async def notifications_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)

    def _load(s: Session) -> tuple[dict[str, Any], list[dict[str, str]]]:
        visible = auth.visible_cameras(s, user, Camera.name)
        return snooze_json(s, user, visible), [{"id": c.id, "name": c.name} for c in visible]

    snooze, cameras = await auth.core(request).db.run(_load)
    return render(request, "notifications.html", user, account=user.account, is_owner=user.account.owner_id is None,
                  events=WEBHOOK_EVENT_LABELS, snooze=snooze, cameras=cameras)


async def account_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    app = auth.core(request)
    two_factor, tokens, sessions = await app.db.run(lambda s: (
        twofactor.summary(s, user.id), auth.token_list(s, user.id), session_list(s, request, user)))
    # the server requires two-step verification of this person: ``required``; not on yet: only setting it up
    return render(request, "account.html", user, two_factor=two_factor, tokens=tokens, sessions=sessions,
                  api_base=app.settings.public_url.rstrip("/"), setup_required=user.needs_two_factor,
                  required=auth.two_factor_required(app.settings, user.account))


# ---------------------------------------------------------------- timeline and clips


def group_series(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive clips of one alarm series become one group (newest first within it), ``"series": True``; the
    alarms between series that are a clip of their own share one group (``"series": False``), so they fill the
    rows of one grid instead of a row each. Each clip's plates as ``{"text", "name"}`` (the name of a known
    plate, which the events name for the owner only)."""
    runs: list[list[dict[str, Any]]] = []
    for it in items:
        names = {f["text"]: f.get("known_plate", {}).get("name") for f in it["findings"] if f.get("text")}
        it["plates"] = [{"text": p, "name": names[p]} for p in sorted(names)]
        it["labels"] = sorted({f["label"] for f in it["findings"]})
        if runs and runs[-1][0]["series_id"] == it["series_id"]:
            runs[-1].append(it)
        else:
            runs.append([it])
    groups: list[dict[str, Any]] = []
    for run in runs:
        if len(run) == 1 and groups and not groups[-1]["series"]:
            groups[-1]["items"].append(run[0])
        else:
            groups.append({"series": len(run) > 1, "items": run})
    return groups


def _filters(request: Request) -> tuple[dict[str, str], dict[str, str]]:
    """The form's filters, and the API parameters they mean (a day becomes since/until in UTC)."""
    qp = request.query_params
    form = {k: qp.get(k, "").strip() for k in ("camera_id", "site", "day", "label", "verdict", "plate", "plates",
                                                 "kept")}
    params = {k: v for k, v in form.items() if v and k != "day"}
    if form["day"]:
        try:
            d = date.fromisoformat(form["day"])
            # the day in the browser's time zone (tz = JavaScript's getTimezoneOffset(), minutes), else UTC
            raw_tz = qp.get("tz", "0").strip()
            tz = int(raw_tz) if raw_tz.lstrip("-").isdigit() and abs(int(raw_tz)) <= 900 else 0
            start = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(minutes=tz)
            params["since"], params["until"] = start.isoformat(), (start + timedelta(days=1)).isoformat()
        except ValueError:
            form["day"] = ""
    if qp.get("cursor"):
        params["cursor"] = qp["cursor"]
    return form, params


async def timeline(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    app = auth.core(request)
    form, params = _filters(request)

    def _load(s: Session) -> dict[str, Any]:
        try:
            items, cursor = query_events(s, user, params, PAGE_SIZE, names=True)
        except ApiError:
            items, cursor = [], None
        visible = auth.visible_cameras(s, user, Camera.name)
        cams = [{"id": c.id, "name": c.name, "site": c.site} for c in visible]
        if request.query_params.get("partial") == "1":  # the next page of clips: no filter form
            return {"items": items, "cursor": cursor, "cameras": cams, "labels": [], "stored": []}
        # the labels and causes the installed detectors give, and those stored on the clips one may see (of a
        # detector since removed): one index lookup per stored value, no scan over the account's clips or findings
        labels = frozenset(label for spec in app.plugins.detector_specs.values() for label in spec.labels)
        named = frozenset(verdict_names(app.plugins.detector_specs))
        return {"items": items, "cursor": cursor, "cameras": cams, "stored": stored_causes(s, user, known=named),
                "labels": sorted(labels | set(stored_labels(s, user, known=labels))),
                "cases": case_choices(s, user)}

    data = await app.db.run(_load)
    more_url = None
    if data["cursor"]:
        keep = {k: v for k, v in form.items() if v}
        if form["day"] and request.query_params.get("tz"):
            keep["tz"] = request.query_params["tz"]
        more_url = "/?" + urlencode({**keep, "cursor": data["cursor"],
                                     "partial": "1"})
    ctx = {"groups": group_series(data["items"]), "more_url": more_url, "form": form,
           "cameras": data["cameras"], "labels": data["labels"],
           "sites": site_names(c["site"] for c in data["cameras"]),
           "filter_verdicts": filter_verdicts(verdict_names(app.plugins.detector_specs), data["stored"]),
           "filtered": any(form.values()), "is_owner": user.account.owner_id is None,
           "cases": data.get("cases")}
    if request.query_params.get("partial") == "1":
        return render(request, "_events.html", user, **ctx)
    return render(request, "timeline.html", user, **ctx)


async def clip_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    app = auth.core(request)
    eid = request.path_params["event_id"]

    def _load(s: Session) -> dict[str, Any] | None:
        try:
            ev, cam = load_event(s, user, eid)
        except ApiError:
            return None
        ev["findings"].sort(key=lambda f: (f.get("time") is None, f.get("time") or 0))
        for f in ev["findings"]:  # the API leaves out what a finding does not have; the page asks for every key
            f.setdefault("time", None)
            f.setdefault("box", None)
            f.setdefault("text", None)
            f["known_name"] = f.get("known_plate", {}).get("name")  # the owner's name for a known plate
        # the API's rule (``eventsapi.delete_event``, ``update_event``): the admin right on the event's camera
        may_delete = cam is not None and auth.camera_right(s, user, cam.id) == "admin"
        # a clip in one of the owner's cases: only the owner deletes it (``delete_event``)
        may_remove = may_delete and (ev["case_id"] is None or user.account.owner_id is None)
        keep = None
        if may_delete:
            acc = s.get(Account, user.tenant_id)
            keep = {"days": retention_days(app.settings, acc), "limit": kept_limit_bytes(app.settings, acc),
                    "used": kept_bytes(s, user.tenant_id)}
        case = s.get(Case, ev["case_id"]) if ev["case_id"] and user.account.owner_id is None else None
        cases = case_choices(s, user) if may_delete else None  # None: a sub-user (cases are the owner's)
        # the clips of its alarm series, which the owner's picker offers to put into a case with it
        series_ids = list(s.exec(select(Clip.id).where(Clip.series_id == ev["series_id"]).order_by(
            col(Clip.started_at), col(Clip.id))).all()) if cases is not None and not ev["case_id"] else []
        from alarmcloud.eventsapi import offsite_of

        return {"event": ev, "detectors": (cam.detectors or {}) if cam else {}, "may_delete": may_remove,
                "offsite": offsite_of(app, s, user, ev["id"]), "offsite_scope": user.account.offsite_scope,
                "keep": keep, "is_owner": user.account.owner_id is None, "cases": cases, "series_ids": series_ids,
                "case": {"id": case.id, "name": case.name} if case else None}

    data = await app.db.run(_load)
    if data is None:
        return render(request, "error.html", user, status=404, title="Clip not found",
                      message="This clip does not exist or was deleted.")
    return render(request, "clip.html", user, **data)


async def plates_page(request: Request) -> Response:
    """Known plates: the owner names the cars they know and chooses which are announced."""
    user = await page_user(request)
    if user is None:
        return to_login(request)
    app = auth.core(request)
    is_owner = user.account.owner_id is None

    def _load(s: Session) -> dict[str, Any]:
        cams = auth.visible_cameras(s, user, Camera.name)
        reading = [c.name for c in cams if (c.detectors or {}).get("plates")]
        plates = known_plates_listed(s, user.tenant_id) if is_owner else []
        names = {c.id: c.name for c in cams}
        for p in plates:  # the camera's name where the plate was last seen
            if p["last_seen"]:
                p["last_seen"]["camera"] = names.get(p["last_seen"]["camera_id"], "a deleted camera")
        return {"plates": plates, "reading": reading}

    data = await app.db.run(_load)
    prefill = normalize_plate(request.query_params.get("text", ""))[:20]
    return render(request, "plates.html", user, is_owner=is_owner, prefill=prefill,
                  limit=MAX_KNOWN_PLATES, **data)


# ---------------------------------------------------------------- cameras


def _catalogue(request: Request) -> dict[str, list[str]]:
    app = auth.core(request)
    out: dict[str, list[str]] = {}
    for brand in app.plugins.camera_specs:
        adapter = app.plugins.camera_adapter(brand)
        if adapter is not None:
            out[brand] = [m.name for m in adapter.models()]
    return out


def visible_sites(s: Session, user: User) -> list[str]:
    """The sites of the cameras one may see (``Camera.site``), by name."""
    return site_names(c.site for c in auth.visible_cameras(s, user, Camera.name))


def site_names(sites: Iterable[str | None]) -> list[str]:
    """The sites named, each once, by name (any case)."""
    return sorted({site for site in sites if site}, key=str.casefold)


def site_groups(cams: list[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """Cameras by site, sites by name, the cameras without one last; one group without a name when no camera has a
    site."""
    groups = [(site, [c for c in cams if c["site"] == site]) for site in site_names(c["site"] for c in cams)]
    rest = [c for c in cams if not c["site"]]
    return groups + ([(None, rest)] if rest else [])


async def cameras_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    app = auth.core(request)

    def _load(s: Session) -> list[dict[str, Any]]:
        cams = [camera_json(c) for c in auth.visible_cameras(s, user, Camera.name)]
        specs = app.plugins.detector_specs
        for c in cams:  # ``last_clip_at`` (arrival) tells a new owner whether the upload settings work
            # switched-on detectors that need wider clips than the camera sends (its page says what to change)
            needs = [specs[n] for n, on in (c["detectors"] or {}).items()
                     if on and n in specs and specs[n].min_source_width]
            source = upload_source(s, c["id"]) if needs and c["last_clip_at"] else None
            c["narrow_for"] = sorted(title_of(spec, spec.name) for spec in needs
                                     if source is not None and spec.too_narrow(source["width"]))
            c["source"] = source
        return cams

    cams = await app.db.run(_load)
    return render(request, "cameras.html", user, cameras=cams, groups=site_groups(cams),
                  sites=site_names(c["site"] for c in cams),
                  catalogue=_catalogue(request), can_add=user.account.owner_id is None)


def option_summary(opt: dict[str, Any], value: Any) -> str:
    """One line for a detector option: the camera's own value, or the deployment default (app.js says the same)."""
    def show(v: Any) -> str:
        if isinstance(v, list):
            codes = [c["value"] for c in opt.get("choices", []) if not c.get("group")]  # "all" of the single ones
            return f"all {len(codes)}" if len(codes) > 1 and set(codes) <= set(v) else ", ".join(map(str, v))
        return f"{v:g}" if isinstance(v, int | float) and not isinstance(v, bool) else str(v)

    if value is None:
        default = opt.get("default")
        return "deployment default" + (f" ({show(default)})" if default is not None else "")
    return show(value)


def _option_view(opt: dict[str, Any], value: Any) -> dict[str, Any]:
    """A declared option (``GET .../detectors`` shape) with the camera's value and its summary line."""
    chosen = set(value) if opt["kind"] == "choices" and isinstance(value, list) else set()
    return {**opt, "value": value, "summary": option_summary(opt, value),
            "choices": [{**c, "checked": c["value"] in chosen} for c in opt.get("choices", [])]}


async def camera_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    app = auth.core(request)
    cid = request.path_params["camera_id"]

    def _load(s: Session) -> dict[str, Any] | None:
        try:
            cam = auth.camera_for(s, user, cid)
        except ApiError:
            return None
        rej = s.exec(select(Rejection).where(Rejection.camera_id == cid).order_by(
            col(Rejection.at).desc()).limit(20)).all()
        latest = s.exec(select(Clip).where(Clip.camera_id == cid).order_by(  # the latest to arrive
            col(Clip.received_at).desc()).limit(1)).first()
        thumb = latest if latest is not None and latest.thumb_key else s.exec(
            select(Clip).where(Clip.camera_id == cid, col(Clip.thumb_key).is_not(None)).order_by(
                col(Clip.started_at).desc()).limit(1)).first()
        frame = thumb or latest
        admin = auth.camera_right(s, user, cid) == "admin"
        return {"camera": camera_json(cam), "detector_state": detectors_json(app, cam, upload_source(s, cid)),
                "can_admin": admin, "sites": visible_sites(s, user),
                "last_clip": {"id": latest.id, "at": iso(latest.received_at)} if latest else None,
                "rejections": [{"at": iso(r.at), "code": r.code, "message": r.message} for r in rej],
                "masks": {"thumbnail": f"/api/v1/events/{thumb.id}/thumbnail" if thumb else None,
                          "size": (frame.width, frame.height) if frame and frame.width and frame.height else None,
                          "can_edit": admin}}

    data = await app.db.run(_load)
    if data is None:
        return render(request, "error.html", user, status=404, title="Camera not found",
                      message="This camera does not exist or you may not see it.")
    cam = data["camera"]
    state = data.pop("detector_state")
    source = state["source"]
    detectors = [{"name": n, "title": title_of(app.plugins.detector_specs.get(n), n),
                  "description": d["description"], "labels": d["labels"], "on": state["enabled"][n],
                  # shown while the detector is on (app.js shows or hides it when the owner switches it)
                  "advice": source_advice(d["title"], d["min_source_width"], source)
                  if source is not None and app.plugins.detector_specs[n].too_narrow(source["width"]) else None,
                  "options": [_option_view(o, (state["options"].get(n) or {}).get(o["key"])) for o in d["options"]]}
                 for n, d in sorted(state["available"].items(), key=lambda i: title_of(
                     app.plugins.detector_specs.get(i[0]), i[0]).lower())]
    adapter = app.plugins.camera_adapter(cam["brand"])
    model = next((m for m in adapter.models() if m.name == cam["model"]), None) if adapter else None
    masks = data["masks"]
    if masks["size"] is None:  # no clip yet: the frame of the model's first resolution, else 16:9
        masks["size"] = tuple(model.resolutions[0]) if model and model.resolutions else (16, 9)
    if masks["thumbnail"] is None and cam["has_address"] and adapter is not None:
        masks["snapshot"] = f"/api/v1/cameras/{cam['id']}/snapshot"
    return render(request, "camera.html", user, detectors=detectors, adapter=adapter is not None,
                  ptz=bool(model and model.ptz), **data)


# ---------------------------------------------------------------- storage and statistics


async def storage_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    app = auth.core(request)
    days = 14

    def _load(s: Session) -> dict[str, Any]:
        return {"storage": app.storage.status(s, user.tenant_id, auth.visible_camera_ids(s, user)),
                "stats": charts.daily_stats(s, user, days)}

    data = await app.db.run(_load)
    st = data["storage"]
    rows = data["stats"]
    top = max([p["bytes"] for p in st["per_camera"]] + [1])
    offsite_card = app.settings.offsite.enabled and user.account.owner_id is None  # owners only
    return render(request, "storage.html", user, storage=st, days=days, top=top, account=user.account,
                  offsite=offsite_card,
                  gauge=charts.gauge(st["used_ratio"], f"{charts.percent(st['used_ratio'])} of the quota used"),
                  alarms_chart=charts.bar_chart(rows, f"Alarms per day, last {days} days"),
                  rate_chart=charts.rate_chart(rows, f"False-alarm rate per day, last {days} days"),
                  totals={"alarms": sum(r["alarms"] for r in rows),
                          "false_alarms": sum(r["false_alarms"] for r in rows),
                          "clips": sum(r["clips"] for r in rows)})


# ---------------------------------------------------------------- linked services, privacy, operator


async def links_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    from alarmcloud.oauth import SCOPES

    return render(request, "links.html", user, scopes=SCOPES)


async def privacy_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    app = auth.core(request)

    def _load(s: Session) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        owner = s.get(Account, user.id) if user.account.owner_id is None else None  # the owner's record only
        return twofactor.summary(s, user.id), clipaccess.recent(s, owner) if owner is not None else None

    two_factor, access = await app.db.run(_load)
    return render(request, "privacy.html", user, two_factor=two_factor, clip_access=access,
                  access_days=min(app.settings.privacy.access_log_days, 90))


async def operator_page(request: Request) -> Response:
    user = await page_user(request)
    if user is None:
        return to_login(request)
    if not user.is_operator:
        return render(request, "error.html", user, status=403, title="Operators only",
                      message="This page is for the people who run this deployment.")
    app = auth.core(request)
    data = await app.db.run(lambda s: operator.overview(s, app.settings))
    return render(request, "operator.html", user, plugins=app.plugins.status_table(), **data)
