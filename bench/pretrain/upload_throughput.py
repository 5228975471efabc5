"""Upload throughput of the artifact store to a local S3 server (versitygw on 127.0.0.1, or the server
in GLASSBOX_S3_ENDPOINT) vs writing the same bytes to local disk. Target >= 0.8x.

glassbox: S3Store.put_file as the publisher calls it (sha256 of the file, parallel multipart parts,
the files of a checkpoint two at a time). Baseline: the same files copied to a local directory with
fsync, two at a time. Runs alternate and repeat; the table reports the median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from common import argv, header, median, table  # noqa: E402

MiB = 1024 * 1024


def disk_copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        shutil.copyfileobj(fi, fo, 8 * MiB)
        fo.flush()
        os.fsync(fo.fileno())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--size-mib", type=int, default=64)
    p.add_argument("--part-mib", type=int, default=16)
    p.add_argument("--parallel-parts", type=int, default=4)
    p.add_argument("--parallel-files", type=int, default=2)
    args = p.parse_args()

    from glassbox_api.store import RetryPolicy, S3Settings, S3Store

    with tempfile.TemporaryDirectory(prefix="gb-upload-") as tmp:
        tmp = Path(tmp)
        server = None
        if os.environ.get("GLASSBOX_S3_ENDPOINT"):
            env = dict(os.environ)
            where = env["GLASSBOX_S3_ENDPOINT"]
        else:
            from tests.support.s3 import start_s3

            server = start_s3(tmp / "s3")
            env = server.env()
            where = f"versitygw at {server.endpoint} (posix backend on the same disk)"
        settings = S3Settings.from_env(env, part_size=args.part_mib * MiB, parallel_uploads=args.parallel_parts)
        bucket = f"bench-{uuid.uuid4().hex[:10]}"
        store = S3Store(bucket, "upload", settings=settings, retry=RetryPolicy(deadline=60))
        store.ensure()
        srcs = []
        for i in range(args.files):
            f = tmp / f"shard-{i}.bin"
            f.write_bytes(os.urandom(args.size_mib * MiB))
            srcs.append(f)
        total = args.files * args.size_mib * MiB
        s3_rates, disk_rates, sdk_rates = [], [], []
        raw = settings.client()
        try:
            for r in range(args.runs):
                t0 = time.perf_counter()
                with ThreadPoolExecutor(args.parallel_files) as pool:
                    list(pool.map(lambda f: store.put_file(f"run{r}/{f.name}", f), srcs))
                s3_rates.append(total / (time.perf_counter() - t0) / 1e6)
                # The minio SDK alone, same parts and parallelism: what the store adds on top of it.
                t0 = time.perf_counter()
                with ThreadPoolExecutor(args.parallel_files) as pool:
                    list(pool.map(lambda f: raw.fput_object(bucket, f"sdk{r}/{f.name}", str(f),
                                                            part_size=args.part_mib * MiB,
                                                            num_parallel_uploads=args.parallel_parts), srcs))
                sdk_rates.append(total / (time.perf_counter() - t0) / 1e6)
                for f in srcs:
                    raw.remove_object(bucket, f"sdk{r}/{f.name}")
                out = tmp / f"disk{r}"
                out.mkdir()
                t0 = time.perf_counter()
                with ThreadPoolExecutor(args.parallel_files) as pool:
                    list(pool.map(lambda f: disk_copy(f, out / f.name), srcs))
                disk_rates.append(total / (time.perf_counter() - t0) / 1e6)
                shutil.rmtree(out)
                store.delete_prefix(f"run{r}")
                print(f"run {r + 1}: S3Store {s3_rates[-1]:.0f} MB/s, minio SDK {sdk_rates[-1]:.0f} MB/s, "
                      f"disk {disk_rates[-1]:.0f} MB/s", flush=True)
        finally:
            if server is not None:
                server.stop()
    print()
    print(header(argv(), args.runs))
    print(table(f"upload throughput, {args.files} x {args.size_mib} MiB, {where}", [
        ("MB/s (median)", f"{median(s3_rates):.0f}", f"{median(disk_rates):.0f}", f"{median(s3_rates) / median(disk_rates):.2f}x"),
        ("MB/s (best)", f"{max(s3_rates):.0f}", f"{max(disk_rates):.0f}", f"{max(s3_rates) / max(disk_rates):.2f}x"),
        ("MB/s, store vs raw minio SDK (median)", f"{median(s3_rates):.0f}", f"{median(sdk_rates):.0f}",
         f"{median(s3_rates) / median(sdk_rates):.2f}x"),
    ], header=("metric", "S3Store.put_file", "disk write+fsync", "ratio")))


if __name__ == "__main__":
    main()
