"""Copying clips to an SFTP server (``offsite_sftp.copy_clip``) or a WebDAV folder (``offsite_webdav``): time and
memory per clip.

    uv run python bench/offsite/servers.py [--kind sftp|webdav] [--sizes 2,20,100] [--runs 3] [--age]

Starts OpenSSH's ``sshd`` on loopback (Debian: openssh-server; the SFTP tests' server, ``tests/sftpserver.py``) or
WsgiDAV (the WebDAV tests' server, ``tests/webdavserver.py``), makes one account with its key authorized and the
host key trusted (or its user and password), stores one clip of each size (random bytes:
nothing compresses them on the way) and copies each ``--runs`` times as the copy loop does: log in, make the
folders, write the video and its sidecar under part names, rename them into place. Prints, per size, the median time
of a copy, the rate and the peak growth of the process's resident memory (``ru_maxrss``) so far in the run (the
clips are written and checked in 1 MiB pieces, so it is the copies' own).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alarmcloud import agecrypt, db, notify, offsite_sftp, offsite_webdav  # noqa: E402
from alarmcloud.app import AlarmCloud  # noqa: E402
from alarmcloud.models import Account, Clip, new_id  # noqa: E402
from alarmcloud.testing import test_settings  # noqa: E402

from tests.sftpserver import SshServer  # noqa: E402
from tests.webdavserver import PASSWORD, USER, DavServer  # noqa: E402


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2,20,100", help="clip sizes in MiB, comma separated")
    parser.add_argument("--runs", type=int, default=3, help="copies of each clip")
    parser.add_argument("--kind", choices=("sftp", "webdav"), default="sftp", help="where the copies go")
    parser.add_argument("--age", action="store_true", help="encrypt the copies to an age key (encrypt_to)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as d:
        st: Any = test_settings(Path(d) / "data")
        st.notify.webhook_networks = ["127.0.0.0/8"]
        db.migrate(st.db_url)
        core = AlarmCloud(st)
        st.offsite.allow_http = True  # the WebDAV stand-in speaks plain http on loopback
        server: Any
        acc = Account(id=new_id(), email="bench@example.com", password_hash="x", offsite_kind=args.kind,
                      offsite_enabled=True, offsite_prefix="bench")
        if args.age:  # a key pair made here; only its public half is the account's
            from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

            secret = X25519PrivateKey.generate()
            acc.offsite_age_recipient = agecrypt.bech32_encode("age", secret.public_key().public_bytes_raw())
        if args.kind == "sftp":
            server = SshServer(Path(d) / "sshd")
            server.start()
            acc.offsite_sftp_host, acc.offsite_sftp_port, acc.offsite_sftp_user = "127.0.0.1", server.port, server.user
            acc.offsite_sftp_key_enc, acc.offsite_sftp_public_key = offsite_sftp.new_key(core, acc.id)
            server.authorize(acc.offsite_sftp_public_key)
            _, _, acc.offsite_sftp_host_key = offsite_sftp.test_server(core, acc)  # trusted, as the first test
            copy = offsite_sftp.copy_clip
        else:
            server = DavServer(Path(d) / "webdav")
            acc.offsite_webdav_url, acc.offsite_webdav_user = server.url, USER
            acc.offsite_webdav_password_enc = notify.seal_account_secret(core, "webdav", acc.id, PASSWORD)
            copy = offsite_webdav.copy_clip
        try:
            base = _rss_mib()
            sealed = " (copies encrypted to an age key)" if args.age else ""
            print(f"{args.kind} server{sealed} on port {server.port}, {os.cpu_count()} CPUs; resident memory before "
                  f"{base:.0f} MiB")
            print(f"| clip | copy (median of {args.runs}) | rate | resident memory growth |")
            print("|---|---|---|---|")
            for mib in sizes:
                key = f"bench/{mib}.mp4"
                src, digest = Path(d) / f"{mib}.mp4", hashlib.sha256()
                with src.open("wb") as f:  # in pieces: the benchmark's own buffers stay out of the memory measured
                    for _ in range(mib):
                        piece = os.urandom(1024 * 1024)
                        digest.update(piece)
                        f.write(piece)
                core.blobs.put_file(key, src)
                clip = Clip(id=new_id(), account_id=acc.id, camera_id="cam", series_id="s", blob_key=key,
                            size_bytes=mib * 1024 * 1024, status="done", verdict="alarm",
                            started_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
                times = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    path = copy(core, acc, clip, None, [])
                    times.append(time.perf_counter() - t)
                if args.age:
                    assert (server.root / path).stat().st_size == agecrypt.encrypted_size(mib * 1024 * 1024)
                else:
                    copied = hashlib.sha256()
                    with (server.root / path).open("rb") as f:
                        while piece := f.read(1024 * 1024):
                            copied.update(piece)
                    assert copied.digest() == digest.digest()
                took = statistics.median(times)
                print(f"| {mib} MiB | {took:.2f} s | {mib / took:.0f} MiB/s | {_rss_mib() - base:.0f} MiB |")
        finally:
            server.stop()
            core.db.close()


if __name__ == "__main__":
    main()
