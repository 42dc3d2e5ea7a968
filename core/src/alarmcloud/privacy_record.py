"""Record of processing activities (Art. 30) and the privacy policy page rendered from it."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud


def core_activities(core: AlarmCloud) -> list[dict[str, Any]]:
    """What the core itself processes."""
    st = core.settings
    p = st.privacy
    contract = "contract (Art. 6(1)(b) GDPR)"
    return [
        {"name": "core: accounts and login", "source": "core", "data": ["e-mail address", "password hash"],
         "purpose": "login and necessary account information", "recipients": [],
         "retention": f"until the account is deleted; inactive accounts after {p.inactive_days} days "
                      f"plus a {p.inactive_grace_days}-day notice period", "legal_basis": contract},
        {"name": "core: session cookie", "source": "core",
         "data": ["random session id", "browser and system, coarse (for the list of signed-in devices)"],
         "purpose": "keep the customer logged in", "recipients": [],
         "retention": f"at most {st.session_absolute_days} days", "legal_basis": contract},
        {"name": "core: alarm clips and events", "source": "core",
         "data": ["video recordings", "snapshots", "detections", "plate reads",
                  "cases: the owner's names and notes for incidents and the clips in them",
                  "links the owner made to share a case (hash of the link, expiry, how often it was fetched)"],
         "purpose": "store and analyse alarm recordings of the customer's cameras",
         "recipients": ["whoever the customer gives a link to one of their cases"],
         "retention": f"{st.storage.retention_days} days by default (configurable per account), a clip the "
                      "customer keeps (or puts into a case) until they let it go or delete it, a case until "
                      "the owner deletes it; plate reads "
                      + (f"{p.plates_days} days" if p.plates_days is not None else "with their clip"),
         "legal_basis": contract},
        {"name": "core: camera credentials", "source": "core",
         "data": ["camera P2P id", "camera user name", "camera password"],
         "purpose": "control the customer's cameras", "recipients": [],
         "retention": "until the camera or account is deleted; stored encrypted", "legal_basis": contract},
        {"name": "core: access log", "source": "core",
         "data": ["IP address truncated to /24 (IPv4) or /48 (IPv6)", "path without query", "status"],
         "purpose": "operation and security of the service", "recipients": [],
         "retention": f"{min(p.access_log_days, 90)} days",
         "legal_basis": "legitimate interest (Art. 6(1)(f) GDPR)"},
        {"name": "core: who opened the clips", "source": "core",
         "data": ["who opened a clip, clips or a case (the owner, a sub-user, a case's link)", "how (app, API "
                  "token, link)", "the clip's or case's id", "IP address truncated to /24 (IPv4) or /48 (IPv6)",
                  "time"],
         "purpose": "show the account owner who opened their clips", "recipients": ["the account owner"],
         "retention": f"{min(p.access_log_days, 90)} days", "legal_basis": contract},
        {"name": "core: usage statistics", "source": "core",
         "data": ["requests and bytes per API key, camera and hour"],
         "purpose": "statistics and billing", "recipients": [], "retention": "until the account is deleted",
         "legal_basis": contract},
        {"name": "core: data exports", "source": "core", "data": ["all data of the account"],
         "purpose": "right of access and portability", "recipients": [],
         "retention": f"{p.export_days} days", "legal_basis": "legal obligation (Art. 6(1)(c) GDPR)"},
        {"name": "core: download links", "source": "core",
         "data": ["ids of the chosen events", "file names (camera name, time, verdict)"],
         "purpose": "let the customer resume a broken download of chosen clips", "recipients": [],
         "retention": "24 hours (deleted by the daily retention run or when a new link is made)",
         "legal_basis": contract},
        {"name": "core: notifications", "source": "core",
         "data": ["e-mail address", "push topic URL and access token (encrypted)",
                  "Telegram bot token (encrypted) and chat id", "camera name", "verdict and time",
                  "plate reads", "the clip's picture only where the person switched it on"],
         "purpose": "tell the customer and the sub-users they chose about alarms",
         "recipients": ["the operator's mail server and the person's mail provider (e-mail)",
                        "the push server the person chose, e.g. ntfy.sh (push)",
                        "Telegram, through the bot the person created, to the chat they chose (Telegram)",
                        "the receivers the account owner registered (webhooks)"],
         "retention": f"deliveries {st.notify.keep_days} days; settings until the account is deleted",
         "legal_basis": contract},
        *([{"name": "core: off-site copies", "source": "core",
            "data": ["alarm clips (or every clip, as the owner chose) as stored, privacy masks painted in",
                     "camera name, time, verdict and findings (plate reads included) beside each clip",
                     "the owner's bucket address, access key id and secret key (encrypted)",
                     "or the owner's SFTP server: host, port, user name, its trusted host key, and the account's "
                     "own SSH key (the private half encrypted)",
                     "or the owner's WebDAV folder: its URL, user name and password (encrypted)"],
            "purpose": "keep a copy of the owner's clips in the owner's own storage, safe when the cameras or "
                       "the recorder are taken",
            "recipients": ["the S3-compatible storage the account owner chose (their own bucket)",
                           "the SFTP server the account owner chose (their own, e.g. a NAS)",
                           "the WebDAV server the account owner chose (their own, e.g. Nextcloud)"],
            "retention": "copy jobs as deliveries; settings until the account is deleted; the copies in the "
                         "owner's bucket or on their server are the owner's and are not deleted by this service",
            "legal_basis": contract}] if st.offsite.enabled else []),
        {"name": "core: consent ledger", "source": "core",
         "data": ["releases of recordings", "integration grants"],
         "purpose": "prove and honour the customer's consent", "recipients": [],
         "retention": "until the account is deleted", "legal_basis": "legal obligation (Art. 6(1)(c) GDPR)"},
        {"name": "core: erasure register", "source": "core",
         "data": ["ids of erased accounts, deleted events and deleted cameras", "time of the deletion",
                  "ids and creation times of withdrawn consents (releases for training, integration links)",
                  "camera ids and privacy mask rectangles as saved"],
         "purpose": "keep erasures, deletions, withdrawn consents and privacy masks in effect when a backup made "
                    "before them is restored",
         "recipients": [],
         "retention": "as long as a backup made before the deletion is kept (the operator prunes it with "
                      "`alarmcloud privacy erasures prune`)",
         "legal_basis": "legal obligation (Art. 6(1)(c), Art. 7(3), Art. 17 and Art. 25 GDPR)"},
    ]


def processing_record(core: AlarmCloud) -> list[dict[str, Any]]:
    """The core's activities plus every enabled plugin's ``ProcessingRecord``."""
    out = core_activities(core)
    host = core.plugins
    for kind, specs in (("detector", host.detector_specs), ("camera", host.camera_specs),
                        ("integration", host.integration_specs)):
        for name, spec in sorted(specs.items()):
            rec = getattr(spec, "privacy", None)
            item: dict[str, Any] = {"name": f"{kind}: {name}", "source": f"plugin {name}", "kind": kind,
                                    "description": getattr(spec, "description", "")}
            if rec is None:
                item.update({"data": [], "purpose": "not declared by the plugin", "recipients": [],
                             "retention": "not declared", "legal_basis": "not declared", "declared": False})
            else:
                item.update({"data": list(rec.data), "purpose": rec.purpose, "recipients": list(rec.recipients),
                             "retention": rec.retention, "legal_basis": rec.legal_basis, "declared": True})
            out.append(item)
    return out


def policy_html(core: AlarmCloud) -> str:
    """A self-contained privacy policy page (no third-party resources)."""
    e = html.escape
    rows = []
    for a in processing_record(core):
        rows.append("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            e(a["name"]), e(", ".join(a["data"]) or "-"), e(a["purpose"]),
            e(", ".join(a["recipients"]) or "none"), e(a["retention"]), e(a["legal_basis"])))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Privacy policy</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
td,th{{border:1px solid #ccc;padding:4px}}
table{{border-collapse:collapse;display:block;overflow-x:auto}}</style></head><body>
<h1>Privacy policy</h1>
<p>This deployment ({e(core.settings.public_url)}) processes personal data only as listed below.</p>
<h2>Your rights</h2>
<ul><li>Export all your data: <code>GET /api/v1/me/export</code></li>
<li>Correct it: <code>PATCH /api/v1/me</code></li>
<li>Block processing: <code>PATCH /api/v1/me {{"restricted": true}}</code></li>
<li>Delete your account and every recording: <code>DELETE /api/v1/me</code></li>
<li>Withdraw a release: <code>DELETE /api/v1/me/consents/{{id}}</code></li></ul>
<p>Recordings are never opened by the operator unless you release them. Server logs keep only truncated
IP addresses, for at most {min(core.settings.privacy.access_log_days, 90)} days.</p>
<h2>Processing activities</h2>
<table><tr><th>Activity</th><th>Data</th><th>Purpose</th><th>Recipients</th><th>Retention</th>
<th>Legal basis</th></tr>
{chr(10).join(rows)}
</table></body></html>"""
