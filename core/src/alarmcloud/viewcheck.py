"""View check: is the camera's picture still clear? Cheap measures per clip against a per-camera baseline.

Spider webs and moths glow in the infrared light at night, dirt and condensation blur the lens, a camera gets
covered or knocked askew. Each analysed clip yields a few numbers from three keyframes the pipeline decodes anyway
(320 px wide): sharpness, contrast, brightness, the share of near-uniform picture, whether it is a grey (infrared)
night picture, and a 64-bit hash of the coarse layout. The camera keeps the last ``KEEP`` normal clips per light
(day, night); when the last ``RUN`` clips of one light are all far off that baseline, the view is "obstructed"
(one event and at most one e-mail per incident); ``RESTORE`` normal clips clear it. No pixels are stored.

A light is judged only against its own baseline. A covered lens and the black night of a camera without infrared
light look the same, so a blank dark or grey picture counts as a day picture only when it comes within
``SUDDEN_SECONDS`` of a full-light day clip (``light_of``); otherwise it is a night picture, and a camera whose
nights are black learns that as its night baseline instead of being reported covered.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlmodel import Session, func, select

from alarmcloud import notify
from alarmcloud.contracts import ClipFrames, FrameRequest
from alarmcloud.events import CAMERA_VIEW_OBSTRUCTED, CAMERA_VIEW_RESTORED, Event
from alarmcloud.models import Camera, Clip, Job, aware, iso, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)

#: three keyframes (start, middle, end of the clip), small and in colour: grey pictures are infrared night
REQUEST = FrameRequest(keyframes=True, max_keyframes=3, width=320, color="rgb")
MIN_BASELINE = 8  # normal clips of one light before that light gets a verdict
KEEP = 20  # normal clips per light the baseline is the median of
RUN = 3  # clips of the same light in a row that must all be off before the view counts as obstructed
RESTORE = 2  # normal clips that clear an obstructed view
SHARPNESS_RATIO = 0.35  # blurred: sharpness (or contrast) below this share of the baseline
CONTRAST_RATIO = 0.35
UNIFORM_BLANK = 0.85  # share of near-uniform blocks from which a picture is blank (covered, black, white-out)
UNIFORM_BLOCK_STD = 4.0  # grey levels: a 16x16 block flatter than this is near-uniform
NIGHT_CHROMA = 3.0  # mean colour spread (max - min of R, G, B) below this: a grey infrared picture
HASH_BITS = 20  # of 64: a layout hash farther than this from every baseline clip's is another view
LAYOUT_LIGHT = 2.0  # layouts are compared only for a brightness within this factor of the baseline's
OVEREXPOSED = 200.0  # mean brightness of a blank picture from which it is white, not black or grey
PROBLEMS = ("covered", "overexposed", "blurred", "view_changed")
LIGHTS = ("day", "night")
DARK = 50.0  # mean brightness under which a blank picture shows no light of its own (covered lens or black night)
NIGHT_DARK = 25.0  # a colour picture darker than this is a night picture (lit by a street lamp, no infrared light)
FULL_LIGHT = 0.6  # a day clip at least this share of the day baseline's brightness is full daylight, not dusk
SUDDEN_SECONDS = 30 * 60  # a blank dark picture this soon after a full-light day clip is a day picture


@dataclass(frozen=True)
class Measures:
    """View-quality numbers of one clip (medians over its keyframes)."""

    sharpness: float  # std of the Laplacian (of 4x4 means) / mean brightness, so dark scenes compare
    contrast: float  # 5th to 95th percentile of the grey levels
    brightness: float  # mean grey level 0..255
    uniform: float  # share of 16x16 blocks that are near-uniform (0..1)
    night: bool  # grey picture: the camera is in infrared night mode
    hash: str  # 64-bit difference hash of the coarse layout (16 hex digits)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)


def _block_means(g: np.ndarray, rows: int, cols: int) -> np.ndarray:
    ys = np.linspace(0, g.shape[0], rows + 1).astype(int)[:-1]
    xs = np.linspace(0, g.shape[1], cols + 1).astype(int)[:-1]
    sums = np.add.reduceat(np.add.reduceat(g, ys, axis=0), xs, axis=1)
    counts = np.outer(np.diff(np.append(ys, g.shape[0])), np.diff(np.append(xs, g.shape[1])))
    return sums / counts


def _quarter(a: np.ndarray) -> np.ndarray:
    """Means of 4x4 blocks (strided sums: cheaper than a reshaped mean)."""
    rows = a[0::4] + a[1::4] + a[2::4] + a[3::4]
    return (rows[:, 0::4] + rows[:, 1::4] + rows[:, 2::4] + rows[:, 3::4]) * np.float32(1 / 16)


def frame_measures(rgb: np.ndarray) -> tuple[float, float, float, float, float, np.ndarray]:
    """(sharpness, contrast, brightness, uniform share, chroma, 8x9 layout) of one RGB frame."""
    h, w = rgb.shape[0] // 16 * 16, rgb.shape[1] // 16 * 16
    img = rgb[:h, :w].astype(np.float32)
    g = _grey(img)
    # the Laplacian of 4x4 means: sensor noise (strong in infrared night pictures) averages out, edges stay; divided
    # by the mean brightness, not by the picture's own contrast, which blur lowers as well
    small = _quarter(g)
    lap = 4 * small[1:-1, 1:-1] - small[:-2, 1:-1] - small[2:, 1:-1] - small[1:-1, :-2] - small[1:-1, 2:]
    mean = float(small.mean())
    sharpness = float(lap.std()) / (mean + 10.0)
    hist = np.cumsum(np.bincount(g[::2, ::2].astype(np.uint8).ravel(), minlength=256))
    p5, p95 = np.searchsorted(hist, (0.05 * hist[-1], 0.95 * hist[-1]))
    # 16x16 blocks: variance = mean of squares - square of mean, from the 4x4 means of g and of g * g
    var = _quarter(_quarter(g * g)) - _quarter(small) ** 2
    uniform = float((var < UNIFORM_BLOCK_STD**2).mean()) if var.size else 1.0
    sub = img[::2, ::2]
    chroma = float(np.abs(sub[..., 0] - sub[..., 1]).mean() + np.abs(sub[..., 1] - sub[..., 2]).mean()) / 2
    return sharpness, float(p95 - p5), mean, uniform, chroma, _block_means(small, 8, 9)


def measure(frames: ClipFrames) -> Measures | None:
    """The clip's measures from the keyframes of ``REQUEST`` (None without frames)."""
    imgs = [f.image for f in frames.keyframes if f.image.ndim == 3]
    if not imgs:
        return None
    per = [frame_measures(im) for im in imgs]
    med = [float(np.median([p[i] for p in per])) for i in range(5)]
    layout = np.median(np.stack([p[5] for p in per]), axis=0)  # a mover in one keyframe does not change it
    bits = (layout[:, 1:] > layout[:, :-1]).flatten()
    value = int("".join("1" if b else "0" for b in bits), 2)
    return Measures(sharpness=round(med[0], 4), contrast=round(med[1], 2), brightness=round(med[2], 2),
                    uniform=round(med[3], 4), night=med[4] < NIGHT_CHROMA, hash=f"{value:016x}")


# ---------------------------------------------------------------- baseline and verdict


def _baseline(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    if len(samples) < MIN_BASELINE:
        return None
    out: dict[str, Any] = {k: float(np.median([s[k] for s in samples]))
                           for k in ("sharpness", "contrast", "brightness", "uniform")}
    out["relative_contrast"] = float(np.median([_relative_contrast(s["contrast"], s["brightness"]) for s in samples]))
    out["hashes"] = [int(s["hash"], 16) for s in samples]
    return out


def _relative_contrast(contrast: float, brightness: float) -> float:
    """Contrast for the brightness: a dusk picture is darker and flatter than noon without being blurred."""
    return contrast / (brightness + 10.0)


def _blank(m: Measures) -> bool:
    return m.uniform >= UNIFORM_BLANK or m.contrast < 8


def _ambiguous(m: Measures) -> bool:
    """A blank grey or dark picture does not show its light: a lens covered by day and the black night of a camera
    without infrared light look the same."""
    return _blank(m) and (m.night or m.brightness < DARK)


def _dark_baseline(base: dict[str, Any]) -> bool:
    """The light's usual picture is itself blank and dark: the night of a camera without infrared light."""
    return bool(base["uniform"] >= 0.5 and base["brightness"] < DARK)


def light_of(m: Measures, last: dict[str, Any] | None, day: dict[str, Any] | None, at: float | None) -> str:
    """The light (``day`` or ``night``) a clip is judged in.

    Colour is day, grey (infrared) or very dark (a camera without infrared light under a street lamp) is night. A
    blank grey or dark picture (``_ambiguous``) counts as night, judged only against a night baseline, unless the
    camera's latest normal clip was a full-light day clip (at least ``FULL_LIGHT`` of the day baseline's
    brightness) recorded at most ``SUDDEN_SECONDS`` before it: a picture that goes black that suddenly by day is a
    covered lens, while dusk darkens a camera's clips first.
    """
    if not _ambiguous(m):
        return "night" if m.night or m.brightness < NIGHT_DARK else "day"
    if (day is not None and last is not None and at is not None and last.get("light") == "day" and last.get("full")
            and 0 <= at - float(last["at"]) <= SUDDEN_SECONDS):
        return "day"
    return "night"


def judge(m: Measures, base: dict[str, Any] | None) -> str:
    """``ok``, ``learning`` (no baseline for this light yet) or the problem (one of ``PROBLEMS``)."""
    if base is None:
        return "learning"  # a light is never judged against the other light's baseline
    if _dark_baseline(base):
        return "ok"  # the camera sees nothing in this light anyway: nothing to compare a picture with
    if _blank(m) and base["uniform"] < UNIFORM_BLANK:  # blank where the usual picture is not
        return "overexposed" if m.brightness >= OVEREXPOSED else "covered"
    low_contrast = _relative_contrast(m.contrast, m.brightness) < CONTRAST_RATIO * base["relative_contrast"]
    if m.sharpness < SHARPNESS_RATIO * base["sharpness"] or low_contrast:
        return "blurred"
    if m.brightness >= 220 and base["brightness"] < 170:
        return "overexposed"
    # the layout only in similar light: a street lamp's pool of light in a colour night picture, or low sun, changes
    # the coarse layout of a camera that has not moved
    if not 1 / LAYOUT_LIGHT <= (m.brightness + 10) / (base["brightness"] + 10) <= LAYOUT_LIGHT:
        return "ok"
    value = int(m.hash, 16)
    if min(bin(value ^ h).count("1") for h in base["hashes"]) > HASH_BITS:
        return "view_changed"
    return "ok"


def message(reason: str | None, light: str | None, clips: int = RUN) -> str | None:
    """What the owner should check, in words."""
    which = f"last {clips} {light} clips" if light else f"last {clips} clips"
    return {
        "blurred": f"the picture has been blurred in the {which} — a spider web or dirt on the lens?",
        "covered": f"the picture has been black or blank in the {which} — is the camera covered?",
        "overexposed": f"the picture has been white (overexposed) in the {which} — is something right in front "
                       "of the lens reflecting the light?",
        "view_changed": f"the picture has shown another view than usual in the {which} — has the camera been "
                        "moved?",
    }.get(reason or "")


def view_json(cam: Camera) -> dict[str, Any]:
    """The camera's ``view`` object of the API."""
    data = cam.view_data or {}
    state = cam.view_state or "learning"
    return {"state": state, "reason": cam.view_reason if state == "obstructed" else None,
            "since": iso(cam.view_since) if cam.view_since and state == "obstructed" else None,
            "light": cam.view_light if state == "obstructed" else None,
            "message": message(cam.view_reason, cam.view_light) if state == "obstructed" else None,
            "baseline": {light: len(data.get(light, [])) for light in LIGHTS}, "baseline_min": MIN_BASELINE}


def _reanalysis(s: Session, clip_id: str) -> bool:
    done = s.exec(select(func.count()).select_from(Job).where(Job.clip_id == clip_id, Job.state == "done")).one()
    return int(done) > 1


@dataclass
class ViewState:
    """A camera's view state: ``state``, the problem's ``reason`` and ``light``, and the stored numbers (``data``:
    per light the baseline clips' measures, the latest verdicts per light, the normal clips since an obstruction,
    the latest normal clip's time and light)."""

    state: str = "learning"
    reason: str | None = None
    light: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def step(view: ViewState, m: Measures, at: float | None) -> str | None:
    """Add one clip's measures (recorded at ``at``, Unix seconds) to ``view``; ``obstructed``, ``restored`` or None."""
    data = {light: list(view.data.get(light, [])) for light in LIGHTS}
    recent = dict(view.data.get("recent", {}))
    good = int(view.data.get("good", 0))
    last = view.data.get("last")
    bases = {x: _baseline(data[x]) for x in LIGHTS}
    light = light_of(m, last, bases["day"], at)
    own = bases[light]
    flag = judge(m, own)
    blank = _blank(m)
    # blank pictures teach a light only while the view is not obstructed: a camera without infrared light is black
    # every night and learns that after MIN_BASELINE such clips; a covered lens must not become the baseline
    if flag in ("ok", "learning") and (not blank or view.state != "obstructed"):
        data[light] = (data[light] + [{k: v for k, v in asdict(m).items() if k != "night"}])[-KEEP:]
    if flag in ("ok", "learning") and not blank and at is not None and (last is None or at >= float(last["at"])):
        learned = _baseline(data[light]) if light == "day" else None  # with this clip: the 8th one counts
        full = learned is not None and m.brightness >= FULL_LIGHT * learned["brightness"]
        last = {"at": round(at, 1), "light": light, "full": full}
    recent[light] = (list(recent.get(light, [])) + [flag])[-RUN:]
    change = None
    if view.state != "obstructed":
        run = recent[light]
        if len(run) == RUN and all(f in PROBLEMS for f in run):
            counts = Counter(run)
            reason = max(reversed(run), key=lambda f: counts[f])  # the most frequent; the latest on a tie
            view.state, view.reason, view.light, change = "obstructed", reason, light, "obstructed"
            good = 0
        else:
            view.state = "ok" if any(_baseline(data[x]) for x in LIGHTS) else "learning"
    else:
        blank_reason = view.reason in ("covered", "overexposed")
        relevant = light == view.light or blank_reason
        if relevant and not blank and (flag == "ok" or (flag == "learning" and blank_reason)):
            good += 1
        elif relevant and flag in PROBLEMS:
            good = 0
        if good >= RESTORE:
            view.state, view.reason, view.light, change = "ok", None, None, "restored"
            good = 0
    view.data = {**data, "recent": recent, "good": good, **({"last": last} if last else {})}
    return change


def update(app: AlarmCloud, s: Session, cam: Camera, m: Measures | None, clip_id: str) -> list[Event]:
    """Add one analysed clip to the camera's view state (in the pipeline's transaction); the events to emit."""
    if m is None or _reanalysis(s, clip_id):
        return []  # a re-analysed clip was counted when it arrived
    clip = s.get(Clip, clip_id)
    s.flush()
    # two workers finishing clips of one camera must not lose a sample; FOR NO KEY UPDATE (PostgreSQL): an upload
    # of the camera holds a key-share lock on it while it stores a clip, and may wait for this clip to evict it
    s.refresh(cam, with_for_update={"key_share": True})
    view = ViewState(cam.view_state or "learning", cam.view_reason, cam.view_light, dict(cam.view_data or {}))
    before = _payload(cam)
    change = step(view, m, aware(clip.started_at).timestamp() if clip is not None else None)
    cam.view_state, cam.view_reason, cam.view_light, cam.view_data = view.state, view.reason, view.light, view.data
    events: list[Event] = []
    if change == "obstructed":
        cam.view_since = utcnow()
        events.append(Event(CAMERA_VIEW_OBSTRUCTED, cam.account_id, cam.id, _payload(cam)))
        _queue_notice(app, s, cam)
    elif change == "restored":
        cam.view_since = None
        events.append(Event(CAMERA_VIEW_RESTORED, cam.account_id, cam.id,
                            {**before, "state": "ok", "dismissed": False}))
    s.add(cam)
    return events


def _payload(cam: Camera) -> dict[str, Any]:
    return {"state": cam.view_state, "reason": cam.view_reason, "light": cam.view_light, "clips": RUN,
            "since": iso(cam.view_since) if cam.view_since else None,
            "message": message(cam.view_reason, cam.view_light), "camera_name": cam.name}


def dismiss(s: Session, cam: Camera) -> Event | None:
    """The owner dismissed the notice: forget the baseline and learn the view anew (a ``restored`` event if it was
    obstructed)."""
    s.refresh(cam, with_for_update={"key_share": True})
    event = None
    if cam.view_state == "obstructed":
        event = Event(CAMERA_VIEW_RESTORED, cam.account_id, cam.id,
                      {**_payload(cam), "state": "learning", "dismissed": True})
    cam.view_state, cam.view_reason, cam.view_since, cam.view_light, cam.view_data = "learning", None, None, None, {}
    s.add(cam)
    return event


def _queue_notice(app: AlarmCloud, s: Session, cam: Camera) -> None:
    base = app.settings.public_url.rstrip("/")
    name = cam.name or "camera"
    text = (f"Check the view of camera {name}: {message(cam.view_reason, cam.view_light)}\n\n"
            "Clean the lens or remove what is in front of it; this notice clears by itself once the picture is "
            "clear again. If the camera was moved on purpose, dismiss the notice so that it learns the new view:\n"
            f"{base}/cameras\n\nChange your notifications: {base}/notifications\n")
    notify.queue_view_notice(app, s, cam, f"Check the view of camera {name}", text)
