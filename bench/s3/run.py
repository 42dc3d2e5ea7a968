"""Cost of serving clips from an S3 bucket (moto server on loopback) against local disk.

    uv run python bench/s3/run.py [--mib 20]

Measures: a 1 KiB Range read (requests, bytes fetched, time), streaming a whole clip in 256 KiB reads (the video
endpoint's chunk), uploading it (multipart above 8 MiB), and ``local_file`` (the worker's download before
decoding). moto keeps objects in memory in this process, so the times are a lower bound for a real server; the
request and byte counts are what any server sees.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alarmcloud.blobstore import LocalBlobStore, S3BlobStore  # noqa: E402

from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3  # noqa: E402


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=20)
    args = ap.parse_args()
    data = os.urandom(args.mib * 1024 * 1024)
    srv = MotoS3()
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalBlobStore(Path(tmp) / "blobs")
        s3 = S3BlobStore(srv.new_bucket(), Path(tmp) / "staging", endpoint_url=srv.endpoint, region=REGION,
                         access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, allow_http=True)
        print(f"clip of {args.mib} MiB; median of 5 runs")
        for name, store in (("local", local), ("s3", s3)):
            def upload(store=store) -> None:  # type: ignore[no-untyped-def]
                staged = store.tmp_path("up")
                staged.write_bytes(data)
                store.put_file("a/c/clip.mp4", staged)

            t_up = timed(upload)

            def range_1k(store=store) -> None:  # type: ignore[no-untyped-def]
                with store.open("a/c/clip.mp4") as fh:
                    fh.seek(len(data) // 2)
                    assert len(fh.read(1024)) == 1024

            def stream(store=store) -> None:  # type: ignore[no-untyped-def]
                with store.open("a/c/clip.mp4") as fh:
                    while fh.read(256 * 1024):
                        pass

            def local_file(store=store) -> None:  # type: ignore[no-untyped-def]
                with store.local_file("a/c/clip.mp4") as p:
                    assert p.stat().st_size == len(data)

            t_range, t_stream, t_file = timed(range_1k), timed(stream), timed(local_file)
            extra = ""
            if store is s3:
                with s3.open("a/c/clip.mp4") as fh:
                    fh.seek(len(data) // 2)
                    fh.read(1024)
                    r1 = (fh.requests, fh.fetched)  # type: ignore[attr-defined]
                with s3.open("a/c/clip.mp4") as fh:
                    while fh.read(256 * 1024):
                        pass
                    r2 = fh.requests  # type: ignore[attr-defined]
                extra = (f"  [1 KiB range: {r1[0]} GET of {r1[1]} B (+1 HEAD at open); whole clip: {r2} GETs "
                         "(+1 HEAD)]")
            print(f"{name:5}  put_file {t_up * 1000:7.1f} ms   1 KiB range {t_range * 1000:6.2f} ms   "
                  f"stream {t_stream * 1000:7.1f} ms   local_file {t_file * 1000:7.1f} ms{extra}")
    srv.stop()


if __name__ == "__main__":
    main()
