"""Upload throughput of the artifact store to a local S3 server (versitygw on 127.0.0.1, or the server
in GLASSBOX_S3_ENDPOINT) vs s5cmd, the S3 copy tool a user would pick for checkpoints (target >= 1.0x),
and vs writing the same bytes to local disk.

glassbox: S3Store.put_file as the publisher calls it (its defaults: object data as UNSIGNED-PAYLOAD,
one PUT up to the multipart threshold, parallel parts above it; the files of a checkpoint two at a
time). Baseline: the same files copied to a local directory with fsync, two at a time. Beside them:
the store with a signed payload (the SDK's default over plain HTTP), the raw minio SDK, and s5cmd
(built from its Go module by build-s5cmd.sh; `s5cmd cp DIR/* s3://bucket/prefix/` with its own
defaults: one process for all the files, its own parallelism and part size). CPU
seconds per GB of client and server are reported too: on one machine the server's CPU is part of
the price. Runs alternate and repeat; the table reports the median.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
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


def cpu_seconds(pid: int | None = None) -> float:
    """user+system CPU seconds of a process (this one when pid is None), children not included."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        shutil.copyfileobj(fi, fo, 8 * MiB)
        fo.flush()
        os.fsync(fo.fileno())


def s5cmd_binary() -> str:
    """The cached s5cmd (built on first use from its Go module)."""
    here = Path(__file__).resolve().parent
    return subprocess.run(["bash", str(here / "build-s5cmd.sh")], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]


def s5cmd_copy(binary: str, env: dict[str, str], src_dir: Path, url: str) -> None:
    """One `s5cmd cp` of every file in src_dir, as a user would run it (credentials from the env)."""
    subprocess.run([binary, "--endpoint-url", env["GLASSBOX_S3_ENDPOINT"], "cp", f"{src_dir}/*", url], check=True,
                   env={**os.environ, "AWS_ACCESS_KEY_ID": env["GLASSBOX_S3_ACCESS_KEY"],
                        "AWS_SECRET_ACCESS_KEY": env["GLASSBOX_S3_SECRET_KEY"],
                        "AWS_REGION": env.get("GLASSBOX_S3_REGION", "us-east-1")},
                   stdout=subprocess.DEVNULL)


def children_cpu_seconds() -> float:
    t = os.times()
    return t.children_user + t.children_system


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
        signed = S3Store(bucket, "signed", settings=dataclasses.replace(settings, sign_payload=True),
                         retry=RetryPolicy(deadline=60))
        server_pid = server._proc.pid if server is not None else None
        srcs = []
        (tmp / "files").mkdir()
        for i in range(args.files):
            f = tmp / "files" / f"shard-{i}.bin"
            f.write_bytes(os.urandom(args.size_mib * MiB))
            srcs.append(f)
        total = args.files * args.size_mib * MiB
        raw = dataclasses.replace(settings, sign_payload=True).client()  # the SDK as it comes
        gb = total / 1e9
        rates: dict[str, list[float]] = {k: [] for k in CASES}
        cpu: dict[str, list[tuple[float, float]]] = {k: [] for k in CASES}

        s5 = s5cmd_binary()

        def timed(case: str, fn, *, whole: bool = False) -> None:
            """Time one upload of every file: fn per file, two at a time, or (whole) fn once."""
            c0, s0 = cpu_seconds() + children_cpu_seconds(), cpu_seconds(server_pid) if server_pid else 0.0
            t0 = time.perf_counter()
            if whole:
                fn()
            else:
                with ThreadPoolExecutor(args.parallel_files) as pool:
                    list(pool.map(fn, srcs))
            rates[case].append(total / (time.perf_counter() - t0) / 1e6)
            s1 = cpu_seconds(server_pid) if server_pid else 0.0
            cpu[case].append(((cpu_seconds() + children_cpu_seconds() - c0) / gb, (s1 - s0) / gb))

        try:
            for r in range(args.runs):
                timed("store", lambda f: store.put_file(f"run{r}/{f.name}", f))
                timed("signed", lambda f: signed.put_file(f"run{r}/{f.name}", f))
                # The minio SDK alone (signed payload, the same part size and parallelism).
                timed("sdk", lambda f: raw.fput_object(bucket, f"sdk{r}/{f.name}", str(f),
                                                       part_size=args.part_mib * MiB,
                                                       num_parallel_uploads=args.parallel_parts))
                timed("s5cmd", lambda: s5cmd_copy(s5, env, tmp / "files", f"s3://{bucket}/s5cmd{r}/"), whole=True)
                sizes = {f.name: raw.stat_object(bucket, f"s5cmd{r}/{f.name}").size for f in srcs}
                assert sizes == {f.name: args.size_mib * MiB for f in srcs}, f"s5cmd uploaded {sizes}"
                out = tmp / f"disk{r}"
                out.mkdir()
                timed("disk", lambda f: disk_copy(f, out / f.name))
                shutil.rmtree(out)
                for f in srcs:
                    raw.remove_object(bucket, f"sdk{r}/{f.name}")
                    raw.remove_object(bucket, f"s5cmd{r}/{f.name}")
                store.delete_prefix(f"run{r}")
                signed.delete_prefix(f"run{r}")
                print(f"run {r + 1}: " + ", ".join(f"{CASES[k]} {v[-1]:.0f} MB/s" for k, v in rates.items()), flush=True)
        finally:
            if server is not None:
                server.stop()
    med = {k: median(v) for k, v in rates.items()}
    mode = (f"one PUT per file (threshold {settings.multipart_threshold // MiB} MiB)"
            if args.size_mib * MiB <= settings.multipart_threshold
            else f"multipart, {args.part_mib} MiB parts, {args.parallel_parts} in parallel")
    print()
    print(header(argv(), args.runs))
    print(table(f"upload throughput, {args.files} x {args.size_mib} MiB ({mode}), {where}", [
        ("MB/s, store vs s5cmd (median)", f"{med['store']:.0f}", f"{med['s5cmd']:.0f}",
         f"{med['store'] / med['s5cmd']:.2f}x (target >= 1.0x)"),
        ("MB/s, store vs s5cmd (best)", f"{max(rates['store']):.0f}", f"{max(rates['s5cmd']):.0f}",
         f"{max(rates['store']) / max(rates['s5cmd']):.2f}x"),
        ("MB/s, store vs disk (median)", f"{med['store']:.0f}", f"{med['disk']:.0f}", f"{med['store'] / med['disk']:.2f}x"),
        ("MB/s, store vs disk (best)", f"{max(rates['store']):.0f}", f"{max(rates['disk']):.0f}",
         f"{max(rates['store']) / max(rates['disk']):.2f}x"),
        ("MB/s, store signed payload vs disk (median)", f"{med['signed']:.0f}", f"{med['disk']:.0f}",
         f"{med['signed'] / med['disk']:.2f}x"),
        ("MB/s, store vs raw minio SDK (median)", f"{med['store']:.0f}", f"{med['sdk']:.0f}",
         f"{med['store'] / med['sdk']:.2f}x"),
    ], header=("metric", "S3Store.put_file", "baseline", "ratio")))
    print()
    print("CPU seconds per GB uploaded (median; client = this process and its children (s5cmd), server = the S3 server process):")
    for k, name in CASES.items():
        c = median([x[0] for x in cpu[k]])
        srv = f", server {median([x[1] for x in cpu[k]]):.2f}" if server_pid else ""
        print(f"  {name}: client {c:.2f}{srv}")


CASES = {"store": "S3Store", "signed": "S3Store signed payload", "sdk": "minio SDK", "s5cmd": "s5cmd", "disk": "disk"}


if __name__ == "__main__":
    main()
