"""Deleting old off-site copies (``offsite_prune.prune``): how long a run takes over a year of copies.

    uv run python bench/offsite/prune.py [--kind sftp|webdav|s3] [--days 365] [--clips 20] [--keep 30]

Starts the tests' stand-in for the owner's storage on loopback (OpenSSH's ``sshd``, WsgiDAV, or moto's S3 server),
lays out ``--days`` day folders of one camera before today with ``--clips`` copies each (a small video and its
sidecar: the run lists and deletes, it never reads the files), then times a dry run and the run that deletes
everything older than ``--keep`` days, and a second run that finds nothing left to delete (what every later daily
run costs). The S3 files are put through the bucket's own API; the others straight onto the disk the server serves.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alarmcloud import db, notify, offsite, offsite_prune, offsite_sftp  # noqa: E402
from alarmcloud.app import AlarmCloud  # noqa: E402
from alarmcloud.models import Account, new_id  # noqa: E402
from alarmcloud.testing import test_settings  # noqa: E402

from tests.s3server import ACCESS_KEY, REGION, MotoS3  # noqa: E402
from tests.sftpserver import SshServer  # noqa: E402
from tests.webdavserver import PASSWORD, USER, DavServer  # noqa: E402

PREFIX = "bench"


def _layout(days: int, clips: int) -> list[str]:
    """The paths of the copies: ``days`` day folders before today, ``clips`` videos and sidecars each."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    paths = []
    for d in range(1, days + 1):
        day = today - timedelta(days=d)
        for c in range(clips):
            t = day + timedelta(minutes=c)
            stem = f"Garden/{t:%Y/%m/%d}/{t:%Y%m%dT%H%M%S}Z-{new_id()}"
            paths += [stem + ".mp4", stem + ".json"]
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("sftp", "webdav", "s3"), default="sftp", help="the owner's storage")
    parser.add_argument("--days", type=int, default=365, help="day folders of copies before today")
    parser.add_argument("--clips", type=int, default=20, help="copies per day folder")
    parser.add_argument("--keep", type=int, default=30, help="days of copies kept")
    args = parser.parse_args()
    paths = _layout(args.days, args.clips)
    with tempfile.TemporaryDirectory() as d:
        st: Any = test_settings(Path(d) / "data")
        st.notify.webhook_networks = ["127.0.0.0/8"]
        st.offsite.allow_http = True
        db.migrate(st.db_url)
        core = AlarmCloud(st)
        acc = Account(id=new_id(), email="bench@example.com", password_hash="x", offsite_kind=args.kind,
                      offsite_enabled=True, offsite_prefix=PREFIX, offsite_keep_days=args.keep)
        server: Any
        if args.kind == "s3":
            server = MotoS3()
            bucket = server.new_bucket()
            acc.offsite_endpoint, acc.offsite_region, acc.offsite_bucket = server.endpoint, REGION, bucket
            acc.offsite_access_key_id = ACCESS_KEY
            acc.offsite_secret_key_enc = offsite.seal_secret(core, acc.id, "alarmcloud-test-secret")
            for p in paths:
                server.client.put_object(Bucket=bucket, Key=f"{PREFIX}/{p}", Body=b"x" * 100)
        else:
            if args.kind == "sftp":
                server = SshServer(Path(d) / "sshd")
                server.start()
                acc.offsite_sftp_host, acc.offsite_sftp_port = "127.0.0.1", server.port
                acc.offsite_sftp_user = server.user
                acc.offsite_sftp_key_enc, acc.offsite_sftp_public_key = offsite_sftp.new_key(core, acc.id)
                server.authorize(acc.offsite_sftp_public_key)
                _, _, acc.offsite_sftp_host_key = offsite_sftp.test_server(core, acc)
            else:
                server = DavServer(Path(d) / "webdav")
                acc.offsite_webdav_url, acc.offsite_webdav_user = server.url, USER
                acc.offsite_webdav_password_enc = notify.seal_account_secret(core, "webdav", acc.id, PASSWORD)
            for p in paths:
                f = server.root / PREFIX / p
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(b"x" * 100)
        with core.db.session() as s:
            s.add(acc)
            s.commit()
        try:
            print(f"{args.kind}: {args.days} day folders x {args.clips} copies ({len(paths):,} files), keeping "
                  f"{args.keep} days; {os.cpu_count()} CPUs")
            print("| run | time | files deleted | folders removed |")
            print("|---|---|---|---|")
            old = max(0, args.days - args.keep) * args.clips * 2  # the folders of days before the first kept
            for what, dry, expected in (("dry run", True, old), ("run", False, old),
                                        ("next run (nothing left)", False, 0)):
                t = time.perf_counter()
                result = offsite_prune.prune(core, acc, dry_run=dry)
                took = time.perf_counter() - t
                print(f"| {what} | {took:.2f} s | {result.deleted_files:,} | {result.folders_removed} |")
                assert result.deleted_files == expected, (result, expected)
        finally:
            server.stop()
            core.db.close()


if __name__ == "__main__":
    main()
