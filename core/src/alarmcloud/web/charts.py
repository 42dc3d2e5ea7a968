"""Statistics from the events and small server-side SVG pictures (no chart library, no third-party requests)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud.auth import User, core, require_user, visible_camera_ids
from alarmcloud.errors import ApiError, int_id
from alarmcloud.models import Clip


def daily_stats(s: Session, user: User, days: int, today: date | None = None) -> list[dict[str, Any]]:
    """Per day (oldest first): clips, real alarms, false alarms and the false-alarm rate of analysed clips."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    q = select(Clip.started_at, Clip.verdict).where(Clip.account_id == user.tenant_id, Clip.started_at >= since)
    ids = visible_camera_ids(s, user)
    if ids is not None:
        q = q.where(col(Clip.camera_id).in_(ids))
    buckets = {first + timedelta(days=i): {"clips": 0, "alarms": 0, "false_alarms": 0} for i in range(days)}
    for started, verdict in s.exec(q).all():
        d = (started if started.tzinfo else started.replace(tzinfo=UTC)).astimezone(UTC).date()
        b = buckets.get(d)
        if b is None:
            continue
        b["clips"] += 1
        if verdict == "alarm":
            b["alarms"] += 1
        elif verdict and verdict.startswith("false_alarm"):
            b["false_alarms"] += 1
    out = []
    for d, b in buckets.items():
        judged = b["alarms"] + b["false_alarms"]
        out.append({"day": d.isoformat(), **b,
                    "false_alarm_rate": round(b["false_alarms"] / judged, 4) if judged else None})
    return out


async def stats_endpoint(request: Request) -> Response:
    """``GET /api/v1/stats?days=14``: alarms and false-alarm rate per day for the caller's cameras."""
    user = await require_user(request)
    days = int_id(request.query_params.get("days", "14"))
    if days is None or not 1 <= days <= 366:
        raise ApiError(400, "invalid_days", "days must be between 1 and 366")
    rows = await core(request).db.run(lambda s: daily_stats(s, user, days))
    return JSONResponse({"days": rows})


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_label(day: str) -> str:
    """An ISO day as a short axis label that reads the same everywhere: "9 Nov" (not "11-09")."""
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return day
    return f"{d.day} {MONTHS[d.month - 1]}"


def _tick_class(n: int, i: int) -> str | None:
    """The class of day ``i``'s label of ``n``, or None: about 7 days are labelled, counted back from the last;
    every other label is "alt": a phone, where the chart is drawn at half size, shows only the others."""
    step = max(1, (n + 6) // 7)
    if (n - 1 - i) % step:
        return None
    return "tick alt" if ((n - 1 - i) // step) % 2 else "tick"


def _frame(w: int, h: int, title: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" class="chart" '
            f'preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>{body}</svg>')


def bar_chart(rows: list[dict[str, Any]], title: str) -> str:
    """Stacked bars per day: real alarms (dark) over false alarms (light)."""
    w, h, left, bottom, top = 640, 220, 34, 28, 12
    n = max(1, len(rows))
    peak = max([r["alarms"] + r["false_alarms"] for r in rows] + [1])
    plot_h = h - bottom - top
    step = (w - left - 8) / n
    bw = max(2.0, step * 0.7)
    parts = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - 4}" y2="{h - bottom}" class="axis"/>',
             f'<text x="{left - 6}" y="{top + 4}" class="tick" text-anchor="end">{peak}</text>',
             f'<text x="{left - 6}" y="{h - bottom}" class="tick" text-anchor="end">0</text>']
    for i, r in enumerate(rows):
        x = left + i * step + (step - bw) / 2
        ha = plot_h * r["alarms"] / peak
        hf = plot_h * r["false_alarms"] / peak
        y0 = h - bottom
        label = f'{r["day"]}: {r["alarms"]} alarms, {r["false_alarms"]} false alarms'
        parts.append(f'<g><title>{escape(label)}</title>'
                     f'<rect x="{x:.1f}" y="{y0 - ha:.1f}" width="{bw:.1f}" height="{ha:.1f}" class="bar-alarm"/>'
                     f'<rect x="{x:.1f}" y="{y0 - ha - hf:.1f}" width="{bw:.1f}" height="{hf:.1f}" '
                     f'class="bar-false"/></g>')
        if (tick := _tick_class(n, i)) is not None:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{h - 10}" class="{tick}" text-anchor="middle">'
                         f'{escape(day_label(r["day"]))}</text>')
    return _frame(w, h, title, "".join(parts))


def rate_chart(rows: list[dict[str, Any]], title: str) -> str:
    """A line of the false-alarm rate per day (0–100 %); days without analysed clips leave a gap."""
    w, h, left, bottom, top = 640, 220, 40, 28, 12
    n = max(1, len(rows))
    plot_h = h - bottom - top
    step = (w - left - 24) / max(1, n - 1) if n > 1 else 0
    parts = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - 4}" y2="{h - bottom}" class="axis"/>']
    for pct in (0, 50, 100):
        y = h - bottom - plot_h * pct / 100
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - 4}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{pct}%</text>')
    seg: list[str] = []
    segments: list[list[str]] = []
    for i, r in enumerate(rows):
        x = left + i * step
        rate = r["false_alarm_rate"]
        if rate is None:
            if seg:
                segments.append(seg)
            seg = []
        else:
            y = h - bottom - plot_h * rate
            seg.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" class="dot"><title>'
                         f'{escape(r["day"])}: {round(rate * 100)}% false alarms</title></circle>')
        if (tick := _tick_class(n, i)) is not None:
            parts.append(f'<text x="{x:.1f}" y="{h - 10}" class="{tick}" text-anchor="middle">'
                         f'{escape(day_label(r["day"]))}</text>')
    if seg:
        segments.append(seg)
    for sg in segments:
        parts.insert(1, f'<polyline points="{" ".join(sg)}" class="line"/>')
    return _frame(w, h, title, "".join(parts))


def percent(ratio: float) -> str:
    """A share as a whole percentage; "<1%" for a share that rounds to 0 but is not nothing."""
    return "<1%" if 0 < ratio < 0.005 else f"{ratio * 100:.0f}%"


def gauge(ratio: float, title: str) -> str:
    """A half-ring gauge of the used share of the quota."""
    import math

    ratio = max(0.0, min(1.0, ratio))
    cx, cy, r = 110, 105, 85
    a = math.pi * (1 - ratio)
    x, y = cx + r * math.cos(a), cy - r * math.sin(a)
    cls = "gauge-hi" if ratio >= 0.9 else "gauge-mid" if ratio >= 0.7 else "gauge-ok"
    body = (f'<path d="M {cx - r} {cy} A {r} {r} 0 0 1 {cx + r} {cy}" class="gauge-bg"/>'
            + (f'<path d="M {cx - r} {cy} A {r} {r} 0 0 1 {x:.2f} {y:.2f}" class="{cls}"/>' if ratio > 0 else "")
            + f'<text x="{cx}" y="{cy - 10}" text-anchor="middle" class="gauge-text">{escape(percent(ratio))}</text>')
    return _frame(220, 120, title, body)
