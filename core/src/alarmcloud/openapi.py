"""OpenAPI 3.1 document generated from the route table and the endpoints' docstrings.

The fixed shapes of the public surface (DESIGN.md: scripts and integrations rely on them) carry their request and
response schemas and status codes from ``SHAPES``; a test checks real answers against them.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from alarmcloud import cases, silence, snooze
from alarmcloud.notify import WEBHOOK_EVENTS

ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "code": {"type": "string"}, "message": {"type": "string"}}, "required": ["code", "message"]}}}


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required)}


def _extended(schema: dict[str, Any], required: dict[str, Any] | None = None,
              optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object ``schema`` with more properties: ``required`` ones (added to its required list) and ``optional``."""
    out = {**schema, "properties": {**schema["properties"], **(required or {}), **(optional or {})}}
    if required:
        out["required"] = [*schema.get("required", []), *required]
    return out


STR, INT, BOOL, ANY = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {}
NSTR = {"type": ["string", "null"]}
#: up to 8 rectangles [x0, y0, x1, y1] in fractions of the frame (x0 < x1, y0 < y1, each at least 1 % wide and high)
MASKS = {"type": "array", "maxItems": 8, "description": "Privacy masks: rectangles [x0, y0, x1, y1] in fractions of "
         "the frame, painted black before a clip is stored", "items": {
             "type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number", "minimum": 0, "maximum": 1}}}
CREDENTIALS = _obj({"email": {"type": "string", "format": "email"}, "password": {"type": "string", "minLength": 10}})
#: the view check (``viewcheck``): is the camera's picture clear, blurred, covered or moved?
VIEW = _obj({"state": {"enum": ["learning", "ok", "obstructed"]}, "reason": {
    "enum": ["blurred", "covered", "overexposed", "view_changed", None]}, "since": NSTR},
    {"light": {"enum": ["day", "night", None]}, "message": NSTR,
     "baseline": {"type": "object", "additionalProperties": INT}, "baseline_min": INT})
SITE = {"type": ["string", "null"], "maxLength": 60,
        "description": "the owner's name for where the camera is (Home, Farm): groups cameras, filters alarms; "
        "empty or null: none"}
SILENT_AFTER = {"type": ["integer", "null"], "minimum": 1, "maximum": silence.MAX_DAYS,
                "description": "tell the camera's people when it sends no clip for this many days (power, network or "
                "upload settings gone); null: never"}
CAMERA = _obj({"id": STR, "name": STR, "site": SITE, "silent_after_days": SILENT_AFTER,
               "silent_notified_at": {**NSTR, "description": "when they were told it fell silent; its next clip "
                                      "clears it"},
               "last_clip_at": {**NSTR, "description": "when the server last stored a clip of the camera (its "
                                "arrival, not its recording time); null: none yet"},
               "brand": STR, "model": STR, "port": INT, "has_address": BOOL,
               "has_p2p_id": BOOL, "has_credentials": BOOL, "upload_username": NSTR,
               "detectors": {"type": "object", "additionalProperties": BOOL}, "privacy_masks": MASKS,
               "view": VIEW, "created_at": STR})
CAMERA_IN = _obj({"name": STR, "brand": STR, "model": STR},
                 {"host": {"type": "string", "maxLength": 255,
                           "description": "the camera's local IP address or host name only (no scheme, port or path)"},
                  "p2p_id": STR, "username": STR, "password": STR, "port": INT, "site": SITE,
                  "silent_after_days": SILENT_AFTER,
                  "integrations_may_use_credentials": BOOL})
FINDING = _obj({"detector": STR, "label": STR, "score": {"type": "number"}},
               {"text": STR, "time": {"type": "number"}, "box": {"type": "array"},
                "known_plate": {**_obj({"id": INT, "name": STR, "match": {"enum": ["exact", "close"]}}),
                                "description": "a plate finding of one of the owner's known plates (for the owner "
                                "only): the same text, or one character off (close) from a known plate of 5 or "
                                "more characters that no other known plate is as close to"}})
EVENT = _obj({"id": STR, "camera_id": STR, "started_at": STR, "verdict": NSTR,
              "findings": {"type": "array", "items": FINDING},
              "scores": {"type": "object", "additionalProperties": {"type": "number"},
                         "description": "per detector that reports one (the rain detector), the score it compared "
                         "with the camera's threshold, also when it stayed below and no finding came out"},
              "kept": {**BOOL, "description": "the owner keeps the clip: retention and the quota's eviction leave it "
                       "alone (PATCH the event)"},
              "kept_at": {"type": ["string", "null"], "description": "since when it is kept"},
              "case_id": {"type": ["string", "null"], "description": "the owner's case the clip is in (kept while "
                          "it is there); null: none"}})
NNUM = {"type": ["number", "null"]}
NINT = {"type": ["integer", "null"]}
#: where a clip's off-site copy stands (``offsite.clip_status``), in ``GET /events/{id}`` for the account owner
OFFSITE_CLIP = {"oneOf": [{"type": "null"}, _obj({
    "state": {"enum": ["copied", "waiting", "given_up", "skipped", "none"]},
    "where": {**STR, "description": "the destination set now, in words"},
    "attempts": INT, "last_error": NSTR, "next_attempt_at": NSTR,
    "copied_elsewhere": {**BOOL, "description": "a copy was made to an earlier destination"},
    "encrypted": {**BOOL, "description": "copies go encrypted to the owner's age key (encrypt_to)"}})],
    "description": "the account owner only (null for sub-users, and while off-site copies are not set up): "
    "copied to the destination set now; waiting (with its attempts, last error and next attempt); given_up; "
    "skipped (why in last_error); none (outside what is copied, or before the copies were on)"}
#: the answer to a ``not_*`` mark of an event a detector flagged (``tuning.threshold_suggestion``)
SUGGESTION = {**_obj(
    {"detector": STR, "camera_id": STR, "option": {"const": "threshold"}, "direction": {"enum": ["raise", "lower"]},
     "score": {"type": "number"}, "current": {"type": "number"}, "value": NNUM, "reason": NSTR,
     "marked_wrong": INT, "would_clear": NINT, "would_flag": NINT,
     "marked_right": INT, "would_miss": NINT, "would_catch": NINT}),
    "description": "raise (after a not_* mark of an event the detector flagged): the camera's threshold that would "
    "have left this event an alarm, the next step above its score. lower (after a mark with the detector's label of "
    "an event it did not flag, scored below the threshold): the threshold that would have flagged it, the highest "
    "step at or below its score. value is null when no allowed threshold would (see reason). The counts say what "
    "the value would have done to the camera's other events the owner marked for this detector: would_clear of "
    "marked_wrong would have stayed alarms and would_miss of marked_right (confirmed) would no longer be flagged "
    "(raise); would_catch of marked_right would have been flagged and would_flag of marked_wrong would have been "
    "flagged wrongly (lower). Apply it with PUT /api/v1/cameras/{camera_id}/detectors "
    "{\"options\": {detector: {\"threshold\": value}}}."}
#: how a camera's recent clips scored with a detector that has a ``threshold`` (``tuning.score_levels``)
SCORE_LEVELS = {**_obj(
    {"detector": STR, "camera_id": STR, "option": {"const": "threshold"}, "current": NNUM, "days": INT,
     "clips": INT, "scored": INT,
     "levels": {"type": "array", "items": _obj({"score": {"type": "number"}, "clips": INT, "marked_right": INT,
                                                "marked_wrong": INT})}}),
    "description": "The camera's clips analysed in the last days (query days, 1 to 366, default 30; the newest "
    "10,000): clips, of which scored have a score of the detector (a finding's, else the one it reported below the "
    "threshold), counted per level: the score rounded down to hundredths, with how many of them the owner's latest "
    "mark confirmed (marked_right) or called wrong (marked_wrong). A threshold t flags the clips of the levels at or "
    "above t; current is the camera's threshold now. 400 unknown_detector, or invalid_field for a detector without "
    "a number option threshold or a bad days."}
#: an option a detector declares for cameras (``DetectorOption``); ``default`` is the deployment default
DETECTOR_OPTION = _obj(
    {"key": STR, "label": STR, "kind": {"enum": ["choices", "number"]}, "help": STR, "default": ANY},
    {"choices": {"type": "array", "items": _obj({"value": STR, "label": STR}, {"group": BOOL})},
     "minimum": NNUM, "maximum": NNUM, "step": NNUM})
DETECTOR_OPTIONS_IN = {
    "type": "object", "description": "Per detector: an object of option values (checked against the options the "
    "detector declares; keys left out keep their value, null resets one to the deployment default), or null to "
    "reset all of that detector's options. Nothing is stored unless every value is valid.",
    "additionalProperties": {"type": ["object", "null"]}}
DETECTORS = _obj({
    "enabled": {"type": "object", "additionalProperties": BOOL},
    "options": {"type": "object", "description": "The camera's own option values per detector (unset: the "
                "deployment default)", "additionalProperties": {"type": "object"}},
}, {"available": {"type": "object", "additionalProperties": _obj(
    {"title": {**STR, "description": "The detector's name as people read it (\"Licence plates\")"},
     "labels": {"type": "array", "items": STR}, "description": STR,
     "options": {"type": "array", "items": DETECTOR_OPTION}},
    {"min_source_width": {**INT, "description": "The narrowest uploaded picture (px) the detector's measured "
                          "accuracy holds for; 0: any"}})},
    "source": {"type": ["object", "null"], "description": "What the camera uploads: the widest picture of its last "
               "clips, as players show it (clips: how many were looked at, at most 5); null before its first clip",
               "properties": {"width": INT, "height": INT, "clips": INT}, "required": ["width", "height", "clips"]},
    "advice": {"type": "array", "description": "Per switched-on detector whose clips from this camera are narrower "
               "than its min_source_width: what the owner should change", "items": _obj(
                   {"detector": STR, "code": {"enum": ["source_too_narrow"]}, "min_source_width": INT,
                    "message": STR})}})
ACTIONS = ["motion_detection", "alarm_email", "go_to_preset", "alarm_area", "area_sensitivity"]
RIGHTS = {"type": "object", "additionalProperties": {"enum": ["view", "control", "admin"]}}
#: a camera's latest privacy-mask apply job (``masks_apply.job_json``); state "none": no job yet
MASK_JOB = _obj({"job_id": NSTR, "state": {"enum": ["none", "queued", "running", "done", "cancelled", "dead"]},
                 "total": INT, "done": INT, "failed": INT, "pending_clips": INT,
                 "failures": {"type": "array", "items": _obj({"clip_id": STR, "code": STR, "message": STR})}},
                {"camera_id": STR, "masks": MASKS, "created_at": STR, "finished_at": NSTR, "error": NSTR,
                 "storage": _obj({"used_bytes": INT, "quota_bytes": INT, "over_quota_bytes": INT})})
#: who opened the account's clips (``clipaccess``), for the owner
CLIP_ACCESS = _obj({"id": INT, "at": STR, "who": {"enum": ["owner", "sub_user", "link"]},
                    "email": {**NSTR, "description": "the sub-user's e-mail address"},
                    "via": {"enum": ["session", "token", "link"], "description": "the web UI or an app (session), an "
                            "API token, or a case's link"},
                    "what": {"enum": ["video", "clips", "case"], "description": "a clip's video played, clips "
                             "downloaded (a ZIP), a case downloaded"},
                    "object_id": {**STR, "description": "the clip (video), the first clip or download link "
                                  "(clips), the case (case)"},
                    "case_name": NSTR, "clips": INT,
                    "network": {**STR, "description": "where from: the address truncated (IPv4 /24, IPv6 /48)"}})
#: off-site copies into the owner's own bucket (``offsiteapi``): settings (never the secret key) and status
OFFSITE_COPY = _obj({"clip_id": STR, "state": {"enum": ["queued", "sent", "dead", "skipped"]}, "attempts": INT,
                     "last_error": NSTR}, {"created_at": NSTR, "last_attempt_at": NSTR, "next_attempt_at": NSTR})
OFFSITE_KIND = {"enum": ["s3", "sftp", "webdav"], "description": "where the copies go: s3 (an S3-compatible "
                "bucket: endpoint, region, bucket, access key), sftp (an SFTP server: sftp_host, sftp_port, "
                "sftp_user; the prefix is the folder from the login's start folder) or webdav (a WebDAV folder, "
                "Nextcloud: webdav_url, webdav_user, webdav_password; the prefix is a folder inside it)"}
OFFSITE = _obj({"enabled": BOOL, "kind": OFFSITE_KIND, "endpoint": NSTR, "region": NSTR, "bucket": NSTR,
                "prefix": STR, "access_key_id": NSTR, "has_secret_key": BOOL, "scope": {"enum": ["alarms", "all"]},
                "sftp_host": NSTR, "sftp_port": INT, "sftp_user": NSTR,
                "sftp_host_key": {**NSTR, "description": "the SFTP server's trusted host key ('ssh-ed25519 "
                                  "SHA256:...'); null until the first connection test records it"},
                "sftp_public_key": {**NSTR, "description": "this account's SSH public key: the line to add to "
                                    "~/.ssh/authorized_keys on the SFTP server (null until the kind is sftp)"},
                "webdav_url": NSTR, "webdav_user": NSTR, "has_webdav_password": BOOL,
                "encrypt_to": {**NSTR, "description": "the owner's age public key (age1...): copies and "
                               "sidecars are encrypted to it before they leave (names end in .age); null: plain"},
                "keep_days": {**NINT, "description": "copies older than this many days are deleted from the "
                              "storage once a day (never those of kept clips); null: every copy is kept"},
                "prune": {"oneOf": [{"type": "null"}, _obj({"last_at": STR, "deleted_files": NINT,
                                                            "error": NSTR})],
                          "description": "the last deletion of old copies: when, how many files, its error (null "
                          "when it went through); null before the first or without keep_days"},
                "last_copy_at": NSTR, "last_error": NSTR, "waiting": INT, "given_up": INT,
                "copies": {"type": "array", "items": OFFSITE_COPY}})
OFFSITE_IN = {"type": "object", "additionalProperties": False, "properties": {
    "enabled": BOOL, "kind": OFFSITE_KIND,
    "endpoint": {**NSTR, "description": "https URL of the S3-compatible server (no path)"},
    "region": NSTR, "bucket": NSTR, "prefix": NSTR, "access_key_id": NSTR,
    "secret_key": {**NSTR, "description": "stored encrypted, never returned; empty or null removes it"},
    "scope": {"enum": ["alarms", "all"]},
    "sftp_host": {**NSTR, "description": "host name or IP address of the SFTP server (a new host or port forgets "
                  "the trusted host key)"},
    "sftp_port": {**NINT, "description": "1-65535; null: 22"},
    "sftp_user": {**NSTR, "description": "the user name on the SFTP server"},
    "sftp_host_key": {**NSTR, "description": "the server's host key fingerprint as `ssh-keygen -lf` prints it "
                      "(SHA256:...), to trust it before the first test; null forgets it (the next test trusts the "
                      "key it sees)"},
    "webdav_url": {**NSTR, "description": "the WebDAV folder's https URL, e.g. https://cloud.example.net/remote.php/"
                   "dav/files/anna/ (a new host drops the saved password)"},
    "webdav_user": NSTR,
    "webdav_password": {**NSTR, "description": "the password (Nextcloud: an app password); stored encrypted, never "
                        "returned; empty or null removes it"},
    "encrypt_to": {**NSTR, "description": "an age public key (age1..., from age-keygen): every copy and sidecar is "
                   "encrypted to it before it leaves (age -d -i key.txt opens them; the secret key never comes "
                   "here); empty or null: plain copies"},
    "keep_days": {**NINT, "description": "1-3650: delete copies older than this many days (the day folders before "
                  "it, in UTC; the copies of kept clips stay, and nothing but the files alarmcloud wrote is "
                  "deleted); null: keep every copy"}}}
OFFSITE_TEST = _obj({"ok": BOOL, "deleted": BOOL, "message": STR},
                    {"host_key": {**STR, "description": "SFTP: the host key the server showed"},
                     "host_key_new": {**BOOL, "description": "SFTP: no key was trusted yet and this one is now"}})

OFFSITE_BACKFILL_IN = {"type": "object", "additionalProperties": False, "description": "optional; no body: every "
                       "clip that matches the scope", "properties": {
                           "since": {**STR, "description": "ISO 8601 date or time: clips from then on"},
                           "camera_id": {**STR, "description": "this camera's clips only"},
                           "event_id": {**STR, "description": "this one clip only, whatever the scope says (alone, "
                                        "without since and camera_id)"}}}

OFFSITE_PRUNE_IN = {"type": "object", "additionalProperties": False, "description": "optional", "properties": {
    "dry_run": {**BOOL, "description": "only count what would be deleted"}}}
OFFSITE_PRUNED = _obj({"before": {**STR, "description": "the first day (UTC) whose copies are kept"},
                       "dry_run": BOOL, "deleted_clips": {**INT, "description": "videos deleted"},
                       "deleted_files": {**INT, "description": "files deleted: videos, sidecars, parts of broken-off "
                                         "uploads"},
                       "deleted_bytes": INT, "kept_clips": {**INT, "description": "old copies of kept clips, left "
                                                            "there"},
                       "folders_removed": INT})


PLATE_TEXT = {"type": "string", "maxLength": 20, "description": "the plate as written (\"M-AB 1234\"); stored "
              "upper case without separators (\"MAB1234\")"}
PLATE_NAME = {"type": "string", "minLength": 1, "maxLength": 100, "description": "whose car (\"Family car\")"}
PLATE_NOTIFY = {"type": "boolean", "description": "announce reads of this plate (the plate.recognised webhook "
                "event, IFTTT's plate trigger); default true"}
PLATE_CLOSE_READS = {"type": "boolean", "description": "a read one character off (one wrong, missing or extra "
                     "character) counts as this plate when it has 5 or more characters and no other known plate is "
                     "as close; switch it off for a plate whose neighbours are other cars (a fleet's next number); "
                     "default true"}
KNOWN_PLATE = _obj({"id": INT, "text": STR, "name": STR, "notify": BOOL, "close_reads": BOOL},
                   {"last_seen": {"oneOf": [{"type": "null"}, _obj(
                       {"at": STR, "event_id": STR, "camera_id": STR, "text": STR})],
                       "description": "the newest stored clip with a read of this plate (text: the read, which "
                       "may be one character off); null when no stored clip has one. In the list only"}})


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _header(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema or STR, "description": description}


TIME_IN = {"type": "string", "description": "ISO 8601 (2026-05-01T12:00:00Z; no zone: UTC) or Unix seconds"}
#: the filters of ``GET /api/v1/events`` (``eventsapi.query_events``), ``limit`` and ``cursor`` apart
EVENT_FILTERS = [
    _query("camera_id", STR, "one camera's events"),
    _query("site", STR, "the events of the cameras of one site (the cameras' site field)"),
    _query("since", TIME_IN, "events that started at or after this time"),
    _query("until", TIME_IN, "events that started before this time"),
    _query("label", STR, "events with a finding of this label (rain, plate, insect, ...)"),
    _query("verdict", STR, "alarm, false_alarm:no_motion, analysis_failed, a detector's cause such as "
           "false_alarm:rain, or false_alarm: every false-alarm cause"),
    _query("plate", STR, "events with a plate read up to one character off this text (letters and digits, any "
           "case)"),
    _query("plates", {"enum": ["known", "unknown"]}, "events with a read of one of the owner's known plates, or "
           "with a read that is none of them (the owner only: 403 for sub-users)"),
    _query("series_id", STR, "the events of one alarm series"),
    _query("kept", {"enum": ["true", "false"]}, "true: the events the owner keeps (past the retention period and out "
           "of the quota's eviction); false: the others"),
    _query("case_id", STR, "the events of one of the owner's cases"),
]
#: a video or archive answered whole (200) or in part (206) for a ``Range`` request
RANGE = _header("Range", "one byte range, bytes=START-END (or START- / -SUFFIX): 206 with that part; 416 when "
                "it lies beyond the end")
IF_NONE_MATCH = _header("If-None-Match", "the ETag of a copy the client holds: 304 while the file is unchanged")
PARTIAL = "Partial content: the part of the file the Range asked for"
NOT_MODIFIED = "Not modified: If-None-Match matched the ETag (no body)"
DELIVERY = _obj({"id": INT, "event_type": NSTR, "event_id": NSTR, "state": {"enum": ["queued", "sent", "dead"]},
                 "attempts": INT, "last_error": NSTR, "created_at": NSTR, "last_attempt_at": NSTR,
                 "next_attempt_at": NSTR})
WEBHOOK_EVENT_NAMES = list(WEBHOOK_EVENTS)
WEBHOOK = _obj({"id": STR, "url": STR, "events": {"type": "array", "items": {"enum": WEBHOOK_EVENT_NAMES}},
                "only_real_alarms": BOOL, "created_at": STR})
WEBHOOK_IN = {"type": "object", "additionalProperties": False, "properties": {
    "url": {**STR, "maxLength": 500, "description": "the receiver's http(s) URL, without user name or password; "
            "its host must resolve to public addresses (loopback, private and link-local networks only where the "
            "operator allows them: notify.webhook_networks)"},
    "events": {"type": "array", "items": {"enum": WEBHOOK_EVENT_NAMES},
               "description": "the event types to deliver (default: detections.ready)"},
    "only_real_alarms": BOOL}}
PROFILE = _obj({"id": STR, "email": STR, "role": {"enum": ["user", "operator"]}, "owner_id": NSTR,
                "restricted": BOOL, "created_at": STR, "notify_email": BOOL, "notify_only_real": BOOL,
                "notify_email_picture": BOOL, "notify_cooldown_seconds": INT, "pending_email": NSTR})
PUSH_DELIVERY = _obj({"id": INT, "test": BOOL, "event_id": NSTR, "title": NSTR,
                      "state": {"enum": ["queued", "sent", "dead", "skipped"]}, "attempts": INT, "last_error": NSTR,
                      "created_at": NSTR, "last_attempt_at": NSTR, "next_attempt_at": NSTR})
_NOTIFY_COMMON = {"enabled": BOOL, "has_token": BOOL, "picture": BOOL, "only_real": BOOL, "cooldown_seconds": INT,
                  "deliveries": {"type": "array", "items": PUSH_DELIVERY}}
PUSH = _obj({**_NOTIFY_COMMON, "url": NSTR})
TELEGRAM = _obj({**_NOTIFY_COMMON, "chat_id": NSTR, "problem": NSTR})
STORAGE = _obj({"quota_bytes": INT, "used_bytes": INT, "free_bytes": INT, "used_ratio": {"type": "number"},
                "retention_days": INT, "clip_count": INT, "oldest_clip": NSTR,
                "kept_count": INT, "kept_bytes": INT, "kept_limit_bytes": INT,
                "per_camera": {"type": "array", "items": _obj({"camera_id": STR, "name": NSTR, "clips": INT,
                                                                "bytes": INT, "oldest_clip": NSTR,
                                                                "kept_clips": INT, "kept_bytes": INT})}})
SERIES = _obj({"id": STR, "camera_id": STR, "started_at": STR, "ended_at": STR, "clip_count": INT,
               "clips": {"type": "array", "items": _obj({"id": STR, "started_at": STR, "verdict": NSTR,
                                                          "duration": {"type": ["number", "null"]}})}})
SIGNED_IN = _obj({"id": STR, "device": NSTR, "created_at": STR, "last_seen_at": STR, "current": BOOL})
SNOOZE = {**_obj({"all": NSTR, "cameras": {"type": "array", "items": _obj({"camera_id": STR, "name": STR,
                                                                             "until": STR})}}),
          "description": "the person's alarm messages (e-mail, push, Telegram) snoozed until a time (UTC): for every "
          "camera (all) and per camera; webhooks and linked services are not snoozed"}
CONSENT = _obj({"id": INT, "kind": STR, "subject": NSTR, "purpose": NSTR, "created_at": STR, "withdrawn_at": NSTR})
EXPORT_STARTED = _obj({"id": STR, "state": {"enum": ["running"]}, "url": STR})
HEALTH = _obj({"status": {"enum": ["ok", "degraded"]}, "checks": {
    "type": "object", "additionalProperties": BOOL, "description": "database, storage (S3 only) and each plugin's "
    "own checks; 503 when one fails"}})
#: RFC 6749 section 4.1.1 with PKCE (RFC 7636): the platform's request to link an account
OAUTH_AUTHORIZE = [
    _query("response_type", {"enum": ["code"]}, "code"), _query("client_id", STR, "the platform's client id"),
    _query("redirect_uri", STR, "one of the client's registered redirect URIs"),
    _query("scope", STR, "space-separated scopes (see scopes_supported)"),
    _query("state", STR, "returned to the client unchanged"),
    _query("code_challenge", STR, "PKCE challenge"), _query("code_challenge_method", {"enum": ["S256"]}, "S256")]
#: RFC 6749 section 5.2
OAUTH_ERROR = _obj({"error": STR}, {"error_description": STR})
TOKEN_READ_ONLY = {**BOOL, "default": False, "description": "true: the token may only read (GET and HEAD, and "
                   "POST /api/v1/events/download); anything else answers 403 read_only_token"}
LIMIT_EVENTS = _query("limit", {**INT, "minimum": 1, "maximum": 200, "default": 50}, "at most this many events")
RECORDED_AT = ("when the camera recorded the clip; believed from the account's retention before arrival to 5 "
               "minutes after it")
TRIGGER = "what set off the alarm (the camera's word: motion, pir, audio, ...)"
ORIGINAL_NAME = "the file name the camera gave the clip"
CASE_NAME = {"type": "string", "minLength": 1, "maxLength": 100, "description": "the incident (\"Break-in 3 "
             "November\")"}
CASE_NOTES = {"type": "string", "maxLength": cases.MAX_NOTES, "description": "what happened, a police reference "
              "(line breaks kept)"}
CASE_EVENT_IDS = {"type": "array", "items": STR, "description": "events to put into the case (all or none); their "
                  "clips are kept while they are in it"}
CASE_SHARE = {"oneOf": [{"type": "null"}, _obj({"created_at": STR, "expires_at": STR, "expired": BOOL,
                                                 "fetches": INT, "last_fetch_at": NSTR,
                                                 "max_downloads": {**NINT, "description": "how many downloads the "
                                                                   "link allows (null: no limit)"},
                                                 "used_up": {**BOOL, "description": "downloaded as often as it "
                                                             "allows: it serves nothing more"}})],
              "description": "the case's link for someone without an account (never its token); null: not shared"}
CASE = _obj({"id": STR, "name": STR, "notes": STR, "created_at": STR, "updated_at": STR,
             "exported_at": {**NSTR, "description": "when the case was last downloaded; null: never"},
             "event_count": INT, "size_bytes": INT, "first_at": NSTR, "last_at": NSTR,
             "camera_ids": {"type": "array", "items": STR}, "share": CASE_SHARE})
CASE_DETAIL = _extended(CASE, {"events": {"type": "array", "items": EVENT, "description": "oldest first"}})


def _items(item: dict[str, Any]) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": item}})


#: (method, path) -> status, request schema, response schema
SHAPES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/auth/register"): {"status": 201, "request": CREDENTIALS,
                                        "response": _obj({"id": STR, "email": STR})},
    ("POST", "/api/v1/auth/login"): {"status": 200, "request": CREDENTIALS,
                                     "response": _obj({"id": STR, "email": STR, "role": STR, "csrf_token": STR})},
    ("POST", "/api/v1/auth/logout"): {"status": 204},
    ("GET", "/api/v1/tokens"): {"status": 200, "response": _items(_obj(
        {"id": STR, "name": STR, "read_only": BOOL, "created_at": STR, "last_used_at": NSTR, "revoked": BOOL}))},
    ("POST", "/api/v1/tokens"): {"status": 201, "errors": [400, 401, 403, 409],
                                 "request": {**_obj({"name": {**STR, "maxLength": 100}},
                                                    {"read_only": TOKEN_READ_ONLY}), "additionalProperties": False},
                                 "response": _obj({"id": STR, "name": STR, "read_only": BOOL, "token": {
                                     **STR, "description": "send it as Authorization: Bearer <token>; shown only "
                                     "now"}})},
    ("DELETE", "/api/v1/tokens/{token_id}"): {"status": 204, "errors": [401, 403, 404]},
    ("GET", "/api/v1/subusers"): {"status": 200, "response": _items(_obj({"id": STR, "email": STR,
                                                                          "rights": RIGHTS}))},
    ("POST", "/api/v1/subusers"): {"status": 201, "request": _obj({**CREDENTIALS["properties"]}, {"rights": RIGHTS}),
                                   "response": _obj({"id": STR, "email": STR, "rights": RIGHTS})},
    ("PUT", "/api/v1/subusers/{subuser_id}"): {"status": 200, "request": _obj({"rights": RIGHTS}),
                                               "response": _obj({"id": STR, "rights": RIGHTS})},
    ("DELETE", "/api/v1/subusers/{subuser_id}"): {"status": 204},
    ("GET", "/api/v1/cameras"): {"status": 200, "response": _items(CAMERA)},
    ("POST", "/api/v1/cameras"): {"status": 201, "request": CAMERA_IN, "response": CAMERA},
    ("GET", "/api/v1/cameras/{camera_id}"): {"status": 200, "response": CAMERA},
    ("PATCH", "/api/v1/cameras/{camera_id}"): {"status": 200, "request": {
        "type": "object", "properties": {**{k: v for k, v in CAMERA_IN["properties"].items() if k != "brand"},
                                         "privacy_masks": MASKS}}, "response": CAMERA,
        "errors": [400, 401, 403, 404, 422]},
    ("DELETE", "/api/v1/cameras/{camera_id}"): {"status": 204},
    ("POST", "/api/v1/cameras/{camera_id}/upload-credentials"): {"status": 201, "response": _obj(
        {"username": STR, "password": STR, "http_url": STR, "ftp_host": STR, "ftp_port": INT}, {"ftps": BOOL})},
    ("GET", "/api/v1/cameras/{camera_id}/detectors"): {"status": 200, "response": DETECTORS},
    ("GET", "/api/v1/cameras/{camera_id}/detectors/{detector}/scores"): {
        "status": 200, "response": SCORE_LEVELS, "query": [
            _query("days", {**INT, "minimum": 1, "maximum": 366, "default": 30}, "the clips of the last this many "
                   "days")]},
    ("PUT", "/api/v1/cameras/{camera_id}/detectors"): {
        "status": 200, "request": {"type": "object", "properties": {"options": DETECTOR_OPTIONS_IN},
                                   "additionalProperties": BOOL},
        "response": DETECTORS, "errors": [400, 401, 403, 404]},
    ("POST", "/api/v1/cameras/{camera_id}/actions"): {
        "status": 200, "request": _obj({"action": {"enum": ACTIONS}, "value": ANY}, {"area": INT}),
        "response": _obj({"ok": BOOL, "action": STR, "value": ANY})},
    ("POST", "/api/v1/ingest/clips"): {"status": 201, "media": "video/mp4", "security": "cameraUpload",
                                       "response": _obj({"clip_id": STR, "event_id": STR}, {"series_id": NSTR}),
                                       "query": [_query("recorded_at", TIME_IN, RECORDED_AT),
                                                 _query("trigger", STR, TRIGGER),
                                                 _query("original_name", STR, ORIGINAL_NAME)],
                                       "headers": [_header("X-Recorded-At", RECORDED_AT, TIME_IN),
                                                   _header("X-Trigger", TRIGGER),
                                                   _header("X-File-Name", ORIGINAL_NAME)]},
    ("GET", "/api/v1/events"): {"status": 200, "response": _obj({"items": {"type": "array", "items": EVENT},
                                                                 "next_cursor": NSTR}),
                                "query": [*EVENT_FILTERS, _query("cursor", STR, "next_cursor of the page before, "
                                                                 "with the same filters"), LIMIT_EVENTS]},
    ("PATCH", "/api/v1/events/{event_id}"): {
        "status": 200, "request": {**_obj({"kept": BOOL}), "additionalProperties": False}, "response": EVENT,
        "errors": [400, 401, 403, 404, 409]},
    ("DELETE", "/api/v1/events/{event_id}"): {"status": 204, "errors": [401, 403, 404]},
    ("GET", "/api/v1/events/{event_id}/video"): {
        "status": 200, "response_media": "video/mp4", "headers": [RANGE, IF_NONE_MATCH],
        "media_also": {206: PARTIAL, 304: NOT_MODIFIED}, "errors": [401, 404, 416]},
    ("GET", "/api/v1/events/{event_id}/thumbnail"): {
        "status": 200, "response_media": "image/jpeg", "headers": [IF_NONE_MATCH],
        "media_also": {304: NOT_MODIFIED}, "errors": [401, 404]},
    ("GET", "/api/v1/series"): {"status": 200, "response": _items(SERIES), "query": [
        _query("camera_id", STR, "one camera's series"),
        _query("limit", {**INT, "minimum": 1, "maximum": 200, "default": 20}, "at most this many series")]},
    ("GET", "/api/v1/storage"): {"status": 200, "response": STORAGE},
    ("GET", "/api/v1/stats"): {"status": 200, "query": [_query("days", {**INT, "minimum": 1, "maximum": 366,
                                                                         "default": 14}, "the last this many days")],
                               "response": _obj({"days": {"type": "array", "items": _obj(
                                   {"day": STR, "clips": INT, "alarms": INT, "false_alarms": INT,
                                    "false_alarm_rate": NNUM})}}), "errors": [400, 401]},
    ("GET", "/api/v1/me"): {"status": 200, "response": _extended(PROFILE, optional={"csrf_token": {
        **STR, "description": "send it as X-CSRF-Token with every change made with the session cookie"}})},
    ("PATCH", "/api/v1/me"): {"status": 200, "response": PROFILE, "errors": [400, 401, 403, 409],
                              "request": {"type": "object", "additionalProperties": False, "properties": {
                                  "email": STR, "password": {**STR, "minLength": 10},
                                  "current_password": {**STR, "description": "needed to change email or password"},
                                  "code": {**STR, "description": "a two-step verification code, where it is on"},
                                  "notify_email": BOOL, "notify_only_real": BOOL, "notify_email_picture": BOOL,
                                  "notify_cooldown_seconds": {**INT, "minimum": 0, "maximum": 86400},
                                  "restricted": BOOL}}},
    ("DELETE", "/api/v1/me"): {"status": 200, "errors": [400, 401, 403],
                               "request": _obj({"password": STR}, {"code": STR}),
                               "response": _obj({"deleted": BOOL, "accounts": INT})},
    ("GET", "/api/v1/me/consents"): {"status": 200, "response": _items(CONSENT)},
    ("DELETE", "/api/v1/me/consents/{consent_id}"): {"status": 200, "errors": [401, 404], "response": _extended(
        CONSENT, optional={"training_copies_removed": INT})},
    ("GET", "/api/v1/me/links"): {"status": 200, "response": _items(_obj(
        {"client_id": STR, "name": STR, "integration": NSTR, "scopes": {"type": "array", "items": STR},
         "linked_at": STR}))},
    ("DELETE", "/api/v1/me/links/{client_id}"): {"status": 204, "errors": [401, 404]},
    ("GET", "/api/v1/me/export"): {"status": 200, "response_media": "application/zip"},
    ("POST", "/api/v1/me/exports"): {"status": 202, "response": EXPORT_STARTED},
    ("GET", "/api/v1/me/exports/{export_id}"): {
        "status": 200, "errors": [401, 404, 409, 416], "headers": [RANGE],
        "query": [_query("download", {"enum": ["1"]}, "1: the finished ZIP itself (as Accept: application/zip); "
                         "409 not_ready before it is done")],
        "response": _obj({"id": STR, "state": {"enum": ["running", "done", "failed"]}},
                         {"progress": {"type": "number"}, "clips_done": INT, "clips_total": INT, "size": INT,
                          "download_url": STR, "error": STR})},
    ("GET", "/api/v1/me/2fa"): {"status": 200, "response": _obj({"enabled": BOOL, "pending": BOOL,
                                                                 "recovery_codes_left": INT})},
    ("POST", "/api/v1/me/2fa"): {"status": 201, "errors": [401, 403, 409],
                                 "response": _obj({"secret": STR, "otpauth_uri": STR, "qr_svg": STR,
                                                   "email_code_sent": {**BOOL, "description": "the server requires "
                                                                       "two-step verification of this person: a code "
                                                                       "went to the account's e-mail address, which "
                                                                       "the confirmation needs too"}})},
    ("POST", "/api/v1/me/2fa/confirm"): {"status": 200, "errors": [400, 401, 403, 409],
                                         "request": _obj({"code": STR, "password": STR}, {
                                             "email_code": {**STR, "description": "the code of the e-mail, when "
                                                            "email_code_sent was true (400 invalid_email_code)"}}),
                                         "response": _obj({"enabled": BOOL, "recovery_codes": {
                                             "type": "array", "items": STR}})},
    ("POST", "/api/v1/me/2fa/disable"): {"status": 204, "errors": [400, 401, 403],
                                         "request": _obj({"password": STR, "code": {
                                             **STR, "description": "a code of the app or an unused recovery code"}})},
    ("GET", "/api/v1/me/sessions"): {"status": 200, "response": _items(SIGNED_IN)},
    ("DELETE", "/api/v1/me/sessions"): {"status": 200, "response": _obj({"ended": INT})},
    ("DELETE", "/api/v1/me/sessions/{session_id}"): {"status": 204, "errors": [401, 403, 404]},
    ("GET", "/api/v1/me/snooze"): {"status": 200, "response": SNOOZE},
    ("PUT", "/api/v1/me/snooze"): {
        "status": 200, "response": SNOOZE, "errors": [400, 401, 403, 404],
        "request": {**_obj({"minutes": {**INT, "minimum": 1, "maximum": snooze.MAX_MINUTES}},
                           {"camera_id": {**STR, "description": "one camera's messages; without: every camera's"}}),
                    "additionalProperties": False}},
    ("DELETE", "/api/v1/me/snooze"): {"status": 200, "response": SNOOZE, "errors": [400, 401, 403, 404], "query": [
        _query("camera_id", STR, "end this camera's snooze only (all: the one for every camera); without: every "
               "snooze")]},
    ("GET", "/api/v1/me/push"): {"status": 200, "response": PUSH},
    ("PATCH", "/api/v1/me/push"): {"status": 200, "response": PUSH, "errors": [400, 401, 403],
                                   "request": {"type": "object", "additionalProperties": False, "properties": {
                                       "enabled": BOOL, "url": NSTR, "token": NSTR, "picture": BOOL}}},
    ("POST", "/api/v1/me/push/test"): {"status": 201, "response": PUSH_DELIVERY, "errors": [401, 403, 409]},
    ("GET", "/api/v1/me/telegram"): {"status": 200, "response": TELEGRAM},
    ("PATCH", "/api/v1/me/telegram"): {"status": 200, "response": TELEGRAM, "errors": [400, 401, 403],
                                       "request": {"type": "object", "additionalProperties": False, "properties": {
                                           "enabled": BOOL, "token": NSTR, "chat_id": {"type": ["string", "integer",
                                                                                               "null"]},
                                           "picture": BOOL}}},
    ("POST", "/api/v1/me/telegram/test"): {"status": 201, "response": PUSH_DELIVERY, "errors": [401, 403, 409]},
    ("GET", "/api/v1/webhooks"): {"status": 200, "response": _items(WEBHOOK), "errors": [401, 403]},
    ("POST", "/api/v1/webhooks"): {"status": 201, "errors": [400, 401, 403, 409],
                                   "request": {**WEBHOOK_IN, "required": ["url"]},
                                   "response": _extended(WEBHOOK, required={"secret": {
                                       **STR, "description": "the signing secret: shown only now"}})},
    ("GET", "/api/v1/webhooks/{webhook_id}"): {"status": 200, "response": WEBHOOK, "errors": [401, 403, 404]},
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): {
        "status": 200, "errors": [400, 401, 403, 404],
        "request": _extended(WEBHOOK_IN, optional={"rotate_secret": BOOL}),
        "response": _extended(WEBHOOK, optional={"secret": {
            **STR, "description": "a new signing secret, after rotate_secret only"}})},
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): {"status": 204, "errors": [401, 403, 404]},
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): {"status": 201, "response": DELIVERY,
                                                     "errors": [401, 403, 404]},
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): {
        "status": 200, "response": _items(DELIVERY), "errors": [400, 401, 403, 404],
        "query": [_query("limit", {**INT, "minimum": 1, "maximum": 100, "default": 20}, "at most this many")]},
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): {
        "status": 202, "response": DELIVERY, "errors": [401, 403, 404, 409]},
    ("GET", "/api/v1/cameras/{camera_id}/rejections"): {"status": 200, "response": _items(_obj(
        {"at": STR, "code": STR, "message": STR})), "errors": [401, 404]},
    ("GET", "/api/v1/cameras/{camera_id}/snapshot"): {"status": 200, "response_media": "image/jpeg",
                                                      "errors": [401, 403, 404]},
    ("GET", "/api/v1/cameras/{camera_id}/live"): {"status": 200, "errors": [401, 403, 404], "response": _obj(
        {"rtsp_main": NSTR, "rtsp_sub": NSTR, "rtsp_third": NSTR, "snapshot_url": STR})},
    ("POST", "/api/v1/cameras/{camera_id}/setup"): {"status": 200, "errors": [401, 403, 404],
                                                    "response": _obj({"ok": BOOL, "configured": ANY})},
    ("POST", "/api/v1/auth/login/second-factor"): {
        "status": 200, "errors": [400, 401, 429], "request": _obj({"pending_token": STR, "code": STR}),
        "response": _obj({"id": STR, "email": STR, "role": STR, "csrf_token": STR})},
    ("POST", "/api/v1/me/email/confirm"): {"status": 200, "errors": [400, 404, 409],
                                           "request": _obj({"token": STR}), "response": PROFILE},
    ("POST", "/api/v1/me/telegram/chats"): {
        "status": 200, "errors": [400, 401, 403, 409, 502], "body_optional": True,
        "request": {"type": "object", "additionalProperties": False, "properties": {"token": NSTR}},
        "response": _obj({"chats": {"type": "array", "items": _obj({"chat_id": STR, "type": STR, "title": STR})}})},
    ("GET", "/api/v1/camera-models"): {"status": 200, "response": _obj({"brands": {
        "type": "object", "description": "per camera brand (plugin): its models", "additionalProperties": {
            "type": "array", "items": _obj({
                "name": STR, "generation": STR, "resolutions": {"type": "array", "items": {
                    "type": "array", "items": INT, "minItems": 2, "maxItems": 2}},
                "codecs": {"type": "array", "items": STR}, "frame_rates": {"type": "array", "items": {
                    "type": "number"}}, "ptz": BOOL, "pir": BOOL})}}})},
    ("GET", "/api/v1/admin/clips/{clip_id}/video"): {"status": 200, "response_media": "video/mp4",
                                                     "errors": [401, 403, 404]},
    ("PUT", "/api/v1/operator/cameras/{camera_id}/fair-use"): {
        "status": 200, "errors": [400, 401, 403, 404], "response": CAMERA,
        "request": _obj({"override": {"enum": [None, "normal", "low_priority"]}})},
    ("GET", "/.well-known/oauth-authorization-server"): {"status": 200, "response": _obj({
        "issuer": STR, "authorization_endpoint": STR, "token_endpoint": STR, "revocation_endpoint": STR,
        "scopes_supported": {"type": "array", "items": STR}, "response_types_supported": {"type": "array",
                                                                                          "items": STR},
        "grant_types_supported": {"type": "array", "items": STR},
        "code_challenge_methods_supported": {"type": "array", "items": STR},
        "token_endpoint_auth_methods_supported": {"type": "array", "items": STR}})},
    ("GET", "/oauth/authorize"): {"status": 200, "response_media": "text/html", "query": OAUTH_AUTHORIZE,
                                  "media_also": {302: "Found: back to the client's redirect_uri with an error "
                                                      "(the request was invalid)",
                                                 303: "See other: to /login first, without a session"}},
    ("POST", "/oauth/authorize"): {"status": 303, "query": OAUTH_AUTHORIZE, "form": _obj(
        {"csrf_token": STR, "decision": {"enum": ["approve", "deny"]}}),
        "media_also": {401: "Not logged in (an HTML page)", 403: "The form expired (an HTML page)"}},
    ("POST", "/oauth/token"): {"status": 200, "oauth_errors": True, "form": _obj(
        {"grant_type": {"enum": ["authorization_code", "refresh_token"]}},
        {"code": STR, "redirect_uri": STR, "code_verifier": {**STR, "description": "PKCE (S256)"},
         "refresh_token": STR, "client_id": STR, "client_secret": {
             **STR, "description": "or HTTP Basic (client_secret_basic)"}}),
        "response": _obj({"access_token": STR, "token_type": {"enum": ["Bearer"]}, "expires_in": INT,
                          "refresh_token": STR, "scope": STR})},
    ("POST", "/oauth/revoke"): {"status": 200, "oauth_errors": True, "form": _obj(
        {"token": STR}, {"token_type_hint": {"enum": ["access_token", "refresh_token"]}, "client_id": STR,
                         "client_secret": STR})},
    ("GET", "/api/v1/privacy/processing"): {"status": 200, "response": _obj({"activities": {
        "type": "array", "description": "the record of processing activities (GDPR Art. 30): the core's and every "
        "loaded plugin's", "items": _obj(
            {"name": STR, "source": STR, "data": {"type": "array", "items": STR}, "purpose": STR,
             "recipients": {"type": "array", "items": STR}, "retention": STR, "legal_basis": STR},
            {"kind": {"enum": ["detector", "camera", "integration"]}, "description": STR,
             "declared": {**BOOL, "description": "false: a plugin that declared no record (shown, so that it is "
                          "not missed)"}})}})},
    ("GET", "/-/plugins"): {"status": 200, "response": _obj({"plugins": {"type": "array", "items": _obj(
        {"group": STR, "name": STR, "distribution": NSTR, "version": NSTR, "installed": BOOL, "enabled": BOOL,
         "loaded": BOOL, "error": NSTR, "hook_errors": INT},
        {"provides": {"type": "array", "items": _obj({"name": STR, "title": STR})}})}})},
    ("GET", "/-/health"): {"status": 200, "response": HEALTH, "also": {503: HEALTH}},
    ("GET", "/metrics"): {"status": 200, "response_media": "text/plain"},
    ("GET", "/api/v1/events/{event_id}"): {"status": 200, "response": _extended(EVENT, required={
        "offsite": OFFSITE_CLIP})},
    ("POST", "/api/v1/events/{event_id}/feedback"): {
        "status": 201, "errors": [400, 401, 403, 404],
        "request": {**_obj({"label": STR}, {"detector": {**STR, "default": "rain"}, "release": BOOL}),
                    "additionalProperties": False},
        "response": _obj({"ok": BOOL, "released": BOOL, "suggestion": {"oneOf": [{"type": "null"}, SUGGESTION]}})},
    ("POST", "/api/v1/events/download"): {
        "status": 200, "response_media": "application/zip", "errors": [400, 401, 403, 404, 413],
        "also": {201: _obj({"id": STR, "url": STR, "count": INT, "size": INT, "expires_at": STR})},
        "request": {"type": "object", "additionalProperties": False, "properties": {
            "ids": {"type": "array", "items": STR, "minItems": 1}, "all": BOOL, "count_only": BOOL, "link": BOOL,
            **{k: STR for k in ("camera_id", "site", "since", "until", "label", "verdict", "plate", "case_id")},
            "plates": {"enum": ["known", "unknown"]}, "kept": {"oneOf": [BOOL, {"enum": ["true", "false"]}]}}}},
    ("GET", "/api/v1/plates"): {"status": 200, "response": _items(KNOWN_PLATE), "errors": [401, 403]},
    ("POST", "/api/v1/plates"): {"status": 201, "request": _obj({"text": PLATE_TEXT, "name": PLATE_NAME},
                                                                {"notify": PLATE_NOTIFY,
                                                                 "close_reads": PLATE_CLOSE_READS}),
                                 "response": KNOWN_PLATE, "errors": [400, 401, 403, 409]},
    ("PATCH", "/api/v1/plates/{plate_id}"): {"status": 200, "request": {"type": "object", "additionalProperties": False,
                                                                        "properties": {"name": PLATE_NAME,
                                                                                       "notify": PLATE_NOTIFY,
                                                                                       "close_reads":
                                                                                           PLATE_CLOSE_READS}},
                                             "response": KNOWN_PLATE, "errors": [400, 401, 403, 404]},
    ("DELETE", "/api/v1/plates/{plate_id}"): {"status": 204, "errors": [401, 403, 404]},
    ("GET", "/api/v1/cases"): {"status": 200, "response": _items(CASE), "errors": [401, 403]},
    ("POST", "/api/v1/cases"): {"status": 201, "request": {**_obj({"name": CASE_NAME}, {
        "notes": CASE_NOTES, "event_ids": CASE_EVENT_IDS}), "additionalProperties": False},
        "response": CASE_DETAIL, "errors": [400, 401, 403, 404, 409]},
    ("GET", "/api/v1/cases/{case_id}"): {"status": 200, "response": CASE_DETAIL, "errors": [401, 403, 404]},
    ("PATCH", "/api/v1/cases/{case_id}"): {"status": 200, "request": {**_obj({}, {
        "name": CASE_NAME, "notes": CASE_NOTES}), "additionalProperties": False}, "response": CASE_DETAIL,
        "errors": [400, 401, 403, 404]},
    ("DELETE", "/api/v1/cases/{case_id}"): {"status": 204, "errors": [401, 403, 404]},
    ("POST", "/api/v1/cases/{case_id}/events"): {"status": 200, "request": {**_obj({"event_ids": {
        **CASE_EVENT_IDS, "minItems": 1}}), "additionalProperties": False}, "response": CASE_DETAIL,
        "errors": [400, 401, 403, 404, 409]},
    ("DELETE", "/api/v1/cases/{case_id}/events/{event_id}"): {"status": 200, "response": CASE_DETAIL,
                                                               "errors": [401, 403, 404]},
    ("GET", "/api/v1/cases/{case_id}/download"): {"status": 200, "response_media": "application/zip",
                                                  "headers": [RANGE], "media_also": {206: PARTIAL},
                                                  "errors": [401, 403, 404, 409, 416]},
    ("POST", "/api/v1/cases/{case_id}/share"): {
        "status": 201,
        "request": {**_obj({}, {"days": {"type": "integer", "minimum": 1, "maximum": cases.MAX_SHARE_DAYS,
                                         "default": cases.DEFAULT_SHARE_DAYS},
                                "max_downloads": {"type": "integer", "minimum": 1, "maximum": cases.MAX_SHARE_FETCHES,
                                                  "default": cases.DEFAULT_SHARE_FETCHES,
                                                  "description": "downloads of the ZIP the link allows"}}),
                    "additionalProperties": False},
        "response": _obj({"url": {**STR, "description": "the ZIP, for whoever has the link (shown once)"},
                          "page_url": {**STR, "description": "a page with the case and its download"},
                          "expires_at": STR, "max_downloads": INT}), "errors": [400, 401, 403, 404]},
    ("DELETE", "/api/v1/cases/{case_id}/share"): {"status": 204, "errors": [401, 403, 404]},
    ("GET", "/api/v1/shared-cases/{token}"): {"status": 200, "response_media": "application/zip", "security": None,
                                              "errors": [404, 409, 410]},
    ("GET", "/api/v1/downloads/{link_id}"): {"status": 200, "response_media": "application/zip",
                                             "headers": [RANGE], "media_also": {206: PARTIAL},
                                             "errors": [401, 404, 410, 416]},
    ("POST", "/api/v1/cameras/{camera_id}/privacy-masks/apply"): {"status": 202, "response": MASK_JOB,
                                                                  "errors": [401, 403, 404, 409]},
    ("GET", "/api/v1/cameras/{camera_id}/privacy-masks/apply"): {"status": 200, "response": MASK_JOB},
    ("POST", "/api/v1/cameras/{camera_id}/view/dismiss"): {"status": 200, "response": VIEW,
                                                           "errors": [401, 403, 404]},
    ("GET", "/api/v1/me/clip-access"): {
        "status": 200, "errors": [400, 401, 403],
        "query": [_query("limit", {**INT, "minimum": 1, "maximum": 200, "default": 50}, "at most this many rows"),
                  _query("before", INT, "next_before of the page before: the rows after it")],
        "response": _obj({"items": {"type": "array", "items": CLIP_ACCESS}, "next_before": NINT})},
    ("GET", "/api/v1/me/offsite"): {"status": 200, "response": OFFSITE, "errors": [401, 403, 404]},
    ("PATCH", "/api/v1/me/offsite"): {"status": 200, "request": OFFSITE_IN, "response": OFFSITE,
                                      "errors": [400, 401, 403, 404]},
    ("POST", "/api/v1/me/offsite/test"): {"status": 200, "errors": [400, 401, 403, 404, 409],
                                          "response": OFFSITE_TEST},
    ("POST", "/api/v1/me/offsite/sftp-key"): {"status": 200, "response": OFFSITE, "errors": [401, 403, 404]},
    ("POST", "/api/v1/me/offsite/retry"): {"status": 200, "response": OFFSITE, "errors": [401, 403, 404, 409]},
    ("POST", "/api/v1/me/offsite/backfill"): {
        "status": 200, "errors": [400, 401, 403, 404, 409], "request": OFFSITE_BACKFILL_IN, "body_optional": True,
        "response": _extended(OFFSITE, required={"queued": {**INT, "description": "copies queued now (0 when every "
                                                                  "matching clip has one already)"}})},
    ("POST", "/api/v1/me/offsite/prune"): {
        "status": 200, "errors": [400, 401, 403, 404, 409], "request": OFFSITE_PRUNE_IN, "body_optional": True,
        "response": _extended(OFFSITE, required={"result": OFFSITE_PRUNED})},
}


_ERRORS = {400: "Invalid request", 401: "Not logged in", 403: "Forbidden (e.g. missing CSRF token)",
           404: "Not found", 410: "Gone (e.g. a download link that expired or whose clips changed)",
           416: "Range not satisfiable", 409: "Conflict (e.g. the camera has no privacy masks to apply)",
           413: "Too large (e.g. too many items)",
           422: "Invalid value (e.g. privacy masks outside the frame); nothing was changed"}


#: path prefixes of everything that is not a web UI page (HTML)
NOT_PAGES = ("/api/", "/oauth/", "/-/", "/plugins/", "/.well-known/", "/metrics", "/openapi.json")

_SERVER_ERRORS = ("503 `busy` (the database broke a deadlock or was locked) or `storage_unavailable` (the clip store "
                  "cannot be reached): nothing was saved, try again after `Retry-After`; 500 `internal_error`")


def _prose(docstring: str) -> str:
    """A docstring as text: its hard-wrapped lines joined into paragraphs (blank lines between them kept)."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(docstring))
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs).strip()


def _summary(text: str) -> str:
    """The first sentence of ``text`` (a summary is one short line)."""
    first = re.split(r"(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z(`])", text.split("\n\n")[0], maxsplit=1)[0]
    return first.rstrip(".")


def _operation(method: str, path: str, route: Route) -> dict[str, Any]:
    doc = _prose(route.endpoint.__doc__ or "")
    shape = SHAPES.get((method, path), {})
    status = str(shape.get("status", 200))
    ok: dict[str, Any] = {"description": "No content" if status == "204" else "OK"}
    if "response" in shape:
        ok["content"] = {"application/json": {"schema": shape["response"]}}
    if "response_media" in shape:
        ok["content"] = {shape["response_media"]: {"schema": {"type": "string",
                                                              "contentMediaType": shape["response_media"]}}}
    page = method == "GET" and not path.startswith(NOT_PAGES)
    if page and "response_media" not in shape:
        ok["content"] = {"text/html": {"schema": {"type": "string", "contentMediaType": "text/html"}}}
    op: dict[str, Any] = {
        "summary": _summary(doc) if doc else route.name, "description": doc,
        "operationId": f"{method.lower()}_{route.name}",
        "tags": ["web-ui" if page else path.split("/")[3] if path.startswith("/api/v1/")
                 else path.split("/")[1] or "root"],
        "responses": {status: ok, "4XX": {"description": "Error", "content": {"application/json": {"schema": ERROR}}},
                      "5XX": {"description": _SERVER_ERRORS, "content": {"application/json": {"schema": ERROR}}}},
    }
    if shape.get("oauth_errors"):  # the OAuth endpoints answer errors as RFC 6749 says, not as the API does
        op["responses"]["4XX"] = {"description": "OAuth error (RFC 6749 section 5.2)",
                                  "content": {"application/json": {"schema": OAUTH_ERROR}}}
    if path.startswith("/plugins/"):  # a platform's endpoint (IFTTT, Alexa, Google, a camera's alarm server)
        for code in ("4XX", "5XX"):
            op["responses"][code] = {"description": "Error, in the form the platform the plugin serves expects "
                                                    "(see the plugin's documentation)"}
    for code, schema in shape.get("also", {}).items():  # a second success answer (e.g. 201 instead of a file)
        op["responses"][str(code)] = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    if page:
        op["responses"]["303"] = {"description": "See other (Location): to /login where the page needs a login, "
                                                 "away from the login and sign-up pages for someone logged in"}
    for code, text in shape.get("media_also", {}).items():  # 206 (a part of the file) / 304 (no body)
        op["responses"][str(code)] = {"description": text, **({"content": ok["content"]} if code == 206 else {})}
    for code in shape.get("errors", ()):
        op["responses"][str(code)] = {"description": _ERRORS.get(code, "Error"),
                                      "content": {"application/json": {"schema": ERROR}}}
    params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
              for p in re.findall(r"{(\w+)}", path)] + shape.get("query", []) + shape.get("headers", [])
    if params:
        op["parameters"] = params
    if "form" in shape:
        op["requestBody"] = {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": shape["form"]}}}
    elif "media" in shape:
        op["requestBody"] = {"required": True, "content": {shape["media"]: {
            "schema": {"type": "string", "contentMediaType": shape["media"]}}}}
    elif method in ("POST", "PUT", "PATCH"):
        op["requestBody"] = {"required": "request" in shape and not shape.get("body_optional"),
                             "content": {"application/json": {"schema": shape.get("request", {"type": "object"})}}}
    if "security" in shape:
        op["security"] = [{shape["security"]: []}] if shape["security"] else []  # None: no login at all
    return op


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
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(method, path, route)
    if not prefix:
        _unique_ids(paths)
    return {"openapi": "3.1.0", "info": {"title": "alarmcloud API", "version": "1",
                                         "description": "Camera alarm cloud API; errors are "
                                                        "{\"error\": {\"code\", \"message\"}}. Where the "
                                                        "operator requires two-step verification and the caller "
                                                        "has not set it up, every call but GET /api/v1/me, the "
                                                        "/api/v1/me/2fa setup and logging out answers 403 "
                                                        "two_factor_required."},
            "components": {"securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "ac_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "cameraUpload": {"type": "http", "scheme": "basic"}}},
            "paths": paths}


def _unique_ids(paths: dict[str, Any]) -> None:
    """Operation ids must be unique (client generators name functions by them): where two endpoints share a
    function name (two plugins' ``status``), each such operation is named by its method and path instead."""
    counts = Counter(op["operationId"] for ops in paths.values() for op in ops.values())
    for path, by_method in paths.items():
        for method, op in by_method.items():
            if counts[op["operationId"]] > 1:
                op["operationId"] = method + "_" + "_".join(re.findall(r"[A-Za-z0-9]+", path))


async def endpoint(request: Request) -> Response:
    """The OpenAPI schema of this deployment (core and plugin routes)."""
    return JSONResponse(build(list(request.app.routes)))
