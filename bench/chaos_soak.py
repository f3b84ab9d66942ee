"""Chaos soak on loopback: async uploads at a steady rate while the analysis worker is SIGKILLed every minute and
a Redis of our own is stopped and restarted twice. Prints accepted vs completed cases, duplicates, latency p99 and
every non-2xx answer.

    .venv/bin/python bench/chaos_soak.py                 # about 10 minutes of load, then a bounded drain
    .venv/bin/python bench/chaos_soak.py --minutes 2     # a short validation run

It starts everything itself and removes it afterwards: a `redis-server` on a free loopback port (append-only file,
so queued messages survive its restarts; never the machine's own Redis), a PostgreSQL database of its own on the
local server (`--postgres`), and `skintrouble serve`, `worker --queues analysis,review` and `beat` as separate
processes on them, in a temporary var/ folder. Every loop is bounded by a deadline.

Target: every accepted case (202) completes exactly once (status done or rejected, never left pending, analysed
once), and no 5xx other than the documented 503s (`queue_unavailable`, `database_unavailable`) while Redis is down.
A 503 is retried with the same Idempotency-Key after its Retry-After, at most `--retries` times.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, free_port, synthetic_jpegs

DOCUMENTED_503 = {"queue_unavailable", "database_unavailable"}
ANALYSED = re.compile(r"case ([0-9a-f]{32}) analysed: (\w+)")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest rank: the smallest value with at least q% of the values at or below it
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts} at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.args, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL the whole process group (a worker's pool children too)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # what the group left behind

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Tally:
    accepted: dict[str, float] = field(default_factory=dict)  # case id -> time accepted (monotonic)
    ids_per_upload: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    latencies: list[float] = field(default_factory=list)
    non_2xx: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    undocumented_5xx: int = 0
    given_up: int = 0
    sent: int = 0
    events: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.folder = Path(tempfile.mkdtemp(prefix="chaos-soak-"))
        self.redis_port = free_port()
        self.api_port = free_port()
        self.database = f"skintrouble_soak_{uuid.uuid4().hex[:10]}"
        self.database_url = f"{args.postgres}/{self.database}"
        self.t0 = time.monotonic()
        self.tally = Tally()
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "SKINTROUBLE_VAR_DIR": str(self.folder / "var"),
            "SKINTROUBLE_MODEL_CACHE": str(REPO_ROOT / "var" / "cache" / "models"),
            "SKINTROUBLE_FOLLOW_REGISTRY": "false",
            "SKINTROUBLE_DETECTOR_THREADS": "1",
            "SKINTROUBLE_RATE_LIMIT_PER_MINUTE": "0",
            "SKINTROUBLE_RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE": "0",
            # a killed worker's unacked message comes back after this; the beat re-sends older pending cases
            "SKINTROUBLE_BROKER_VISIBILITY_TIMEOUT": str(args.visibility_timeout),
            "SKINTROUBLE_STALE_CASE_SECONDS": str(args.stale_seconds),
            "SKINTROUBLE_STALE_CASE_CHECK_SECONDS": "15",
            "SKINTROUBLE_RETRAIN_CHECK_SECONDS": "100000",
        }
        for name in ("SKINTROUBLE_DATABASE_URL", "SKINTROUBLE_REDIS_URL", "MLFLOW_TRACKING_URI", "CI"):
            env.pop(name, None)
        self.env = env
        cli = [sys.executable, "-m", "api.cli"]
        redis_dir = self.folder / "redis"
        redis_dir.mkdir()
        self.redis = Process(
            "redis",
            [
                args.redis_server, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(redis_dir),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes",
            ],
            env, self.folder / "redis.log",
        )  # fmt: skip
        self.worker = Process(
            "worker", [*cli, "worker", "--queues", "analysis,review"], env, self.folder / "worker.log"
        )
        self.beat = Process("beat", [*cli, "beat"], env, self.folder / "beat.log")
        self.api = Process(
            "api", [*cli, "serve", "--host", "127.0.0.1", "--port", str(self.api_port)], env, self.folder / "api.log"
        )

    # ---- set-up and tear-down ------------------------------------------------------------------------------
    def event(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:7.1f}s] {text}"
        self.tally.events.append(line)
        print(line, flush=True)

    def create_database(self) -> None:
        import sqlalchemy as sa

        admin = sa.create_engine(f"{self.args.postgres}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
        admin.dispose()

    def drop_database(self) -> None:
        import sqlalchemy as sa

        admin = sa.create_engine(f"{self.args.postgres}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        admin.dispose()

    def wait_redis(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.redis_port), 0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return True
            time.sleep(0.1)
        return False

    def app_key(self) -> str:
        cli = [sys.executable, "-m", "api.cli"]
        run = subprocess.run(
            [*cli, "keys", "create", "--role", "app", "--name", "chaos-soak"],
            cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return run.stdout.strip().splitlines()[-1]

    def wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.api.alive():
                raise RuntimeError("the API exited:\n" + self.api.log.read_text(errors="replace")[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.api_port}/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("the API was not ready in time:\n" + self.api.log.read_text(errors="replace")[-3000:])

    def start(self) -> str:
        self.create_database()
        self.redis.start()
        if not self.wait_redis(20):
            raise RuntimeError("redis-server did not start: " + self.redis.log.read_text(errors="replace")[-2000:])
        key = self.app_key()  # runs the migrations too
        for proc in (self.worker, self.beat, self.api):
            proc.start()
        self.wait_ready(120)
        self.event(
            f"stack up: redis :{self.redis_port}, API :{self.api_port}, database {self.database}, in {self.folder}"
        )
        return key

    def stop(self) -> None:
        for proc in (self.api, self.beat, self.worker, self.redis):
            with contextlib.suppress(Exception):
                proc.stop()
        with contextlib.suppress(Exception):
            self.drop_database()
        if not self.args.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    # ---- load ----------------------------------------------------------------------------------------------
    async def upload(self, client: httpx.AsyncClient, key: str, photo: bytes, n: int, end: float) -> None:
        upload_key = f"soak-{n}"
        headers = {"X-API-Key": key, "Idempotency-Key": upload_key}
        for attempt in range(self.args.retries + 1):
            started = time.monotonic()
            try:
                response = await client.post(
                    "/v1/analyses",
                    params={"mode": "async"},
                    headers=headers,
                    files={"image": (f"{n}.jpg", photo, "image/jpeg")},
                )
            except httpx.HTTPError as exc:
                self.tally.errors[type(exc).__name__] += 1
                if attempt < self.args.retries and time.monotonic() < end:
                    await asyncio.sleep(2)
                    continue
                self.tally.given_up += 1
                return
            self.tally.latencies.append(time.monotonic() - started)
            if response.status_code == 202:
                case_id = response.json()["id"]
                self.tally.accepted.setdefault(case_id, time.monotonic())
                self.tally.ids_per_upload[upload_key].add(case_id)
                return
            code = "?"
            with contextlib.suppress(Exception):
                code = response.json()["error"]["code"]
            self.tally.non_2xx[f"{response.status_code} {code}"] += 1
            if response.status_code >= 500 and not (response.status_code == 503 and code in DOCUMENTED_503):
                self.tally.undocumented_5xx += 1
            if response.status_code == 503 and attempt < self.args.retries and time.monotonic() < end:
                await asyncio.sleep(min(15.0, float(response.headers.get("Retry-After", "5"))))
                continue
            self.tally.given_up += 1
            return

    async def load(self, key: str, photos: list[bytes], seconds: float) -> None:
        end = time.monotonic() + seconds
        interval = 1.0 / self.args.rate
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.api_port}", timeout=30, limits=limits) as client:
            tasks: set[asyncio.Task[None]] = set()
            n = 0
            next_at = time.monotonic()
            while time.monotonic() < end:
                if len(tasks) < self.args.max_in_flight:
                    task = asyncio.create_task(self.upload(client, key, photos[n % len(photos)], n, end + 30))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    n += 1
                    self.tally.sent = n
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if tasks:  # in-flight uploads and their retries are bounded by the client timeout and `end + 30`
                await asyncio.wait(tasks, timeout=120)

    # ---- chaos ---------------------------------------------------------------------------------------------
    async def chaos(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        start = time.monotonic()
        redis_at = sorted({start + seconds / 3, start + 2 * seconds / 3})
        next_kill = start + self.args.kill_every
        while time.monotonic() < end:
            now = time.monotonic()
            if redis_at and now >= redis_at[0]:
                redis_at.pop(0)
                self.event("redis: stopping (SIGTERM)")
                await asyncio.to_thread(self.redis.stop, 15.0)
                await asyncio.sleep(self.args.redis_down)
                self.redis.start()
                up = await asyncio.to_thread(self.wait_redis, 30)
                self.event(f"redis: restarted after {self.args.redis_down:.0f}s down ({'up' if up else 'NOT UP'})")
            elif now >= next_kill:
                next_kill += self.args.kill_every
                self.event("worker: SIGKILL (process group)")
                await asyncio.to_thread(self.worker.kill)
                await asyncio.sleep(1)
                self.worker.start()
                self.event("worker: restarted")
            else:
                await asyncio.sleep(0.5)
            for proc in (self.api, self.beat):
                if not proc.alive():
                    self.event(f"{proc.name} exited ({proc.proc.returncode if proc.proc else '?'}); restarting")
                    proc.start()

    # ---- results -------------------------------------------------------------------------------------------
    def statuses(self) -> dict[str, tuple[str, float | None]]:
        import sqlalchemy as sa

        engine = sa.create_engine(self.database_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, status, created_at, completed_at FROM cases")).all()
        engine.dispose()
        return {
            r[0]: (r[1], (r[3] - r[2]).total_seconds() if r[3] is not None and r[2] is not None else None) for r in rows
        }

    def drain(self, seconds: float) -> dict[str, tuple[str, float | None]]:
        deadline = time.monotonic() + seconds
        while True:
            states = self.statuses()
            pending = [c for c in self.tally.accepted if states.get(c, ("missing", None))[0] == "pending"]
            if not pending or time.monotonic() > deadline:
                return states
            time.sleep(2)

    def report(self, states: dict[str, tuple[str, float | None]], drain_seconds: float) -> int:
        t = self.tally
        accepted = set(t.accepted)
        final = collections.Counter(states.get(c, ("missing", None))[0] for c in accepted)
        completed = final["done"] + final["rejected"]
        analysed = collections.Counter()
        for match in ANALYSED.finditer(self.worker.log.read_text(errors="replace")):
            analysed[match.group(1)] += 1
        twice = sorted(c for c, n in analysed.items() if n > 1)
        split = sorted(k for k, ids in t.ids_per_upload.items() if len(ids) > 1)
        turnaround = [v for c in accepted if (v := states.get(c, ("", None))[1]) is not None]
        print("\n==== chaos soak results ====")
        print(
            f"load: {self.args.minutes:g} min at {self.args.rate:g} uploads/s; uploads sent {t.sent}; "
            f"worker starts {self.worker.starts}, redis starts {self.redis.starts}; drain {drain_seconds:.0f}s"
        )
        print(
            f"accepted (202): {len(accepted)}   completed: {completed} (done {final['done']}, rejected {final['rejected']})"
        )
        print(f"failed: {final['failed']}   still pending: {final['pending']}   missing: {final['missing']}")
        print(f"gave up after retries: {t.given_up}   rows in cases: {len(states)} (accepted + none else expected)")
        print(f"duplicates: cases analysed more than once {len(twice)}; uploads answered with two ids {len(split)}")
        print(f"analysis log lines seen for {len(analysed)} case(s)")
        print(
            f"upload latency: p50 {percentile(t.latencies, 50) * 1000:.0f} ms, p99 {percentile(t.latencies, 99) * 1000:.0f} ms, "
            f"max {max(t.latencies, default=float('nan')) * 1000:.0f} ms ({len(t.latencies)} answers)"
        )
        print(
            f"accept -> complete: p50 {percentile(turnaround, 50):.1f} s, p99 {percentile(turnaround, 99):.1f} s, "
            f"max {max(turnaround, default=float('nan')):.1f} s"
        )
        print("non-2xx answers:" + ("" if t.non_2xx else " none"))
        for what, n in sorted(t.non_2xx.items()):
            print(f"  {what}: {n}")
        print("transport errors:" + ("" if t.errors else " none"))
        for what, n in sorted(t.errors.items()):
            print(f"  {what}: {n}")
        print(f"undocumented 5xx: {t.undocumented_5xx}")
        extra = set(states) - accepted
        ok = (
            completed == len(accepted)
            and not twice
            and not split
            and t.undocumented_5xx == 0
            and not {c for c in extra if states[c][0] == "pending"}
        )
        print("TARGET MET" if ok else "TARGET MISSED")
        if twice:
            print(f"  analysed twice: {twice[:10]}")
        return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load (chaos runs alongside)")
    parser.add_argument("--rate", type=float, default=0.5, help="async uploads per second")
    parser.add_argument("--photo-size", type=int, default=640)
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between worker SIGKILLs")
    parser.add_argument("--redis-down", type=float, default=10.0, help="seconds Redis stays down, twice")
    parser.add_argument("--retries", type=int, default=3, help="retries of a 503 with the same Idempotency-Key")
    parser.add_argument("--max-in-flight", type=int, default=32)
    parser.add_argument("--visibility-timeout", type=int, default=30)
    parser.add_argument("--stale-seconds", type=float, default=60.0)
    parser.add_argument("--drain", type=float, default=240.0, help="at most this long to wait for pending cases")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SKINTROUBLE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432"),
    )
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) afterwards")
    args = parser.parse_args()

    soak = Soak(args)
    photos = synthetic_jpegs(16, args.photo_size, args.photo_size, first_seed=7700)
    try:
        key = soak.start()
        seconds = args.minutes * 60

        async def run() -> None:
            await asyncio.gather(soak.load(key, photos, seconds), soak.chaos(seconds))

        asyncio.run(run())
        soak.event(f"load over: {len(soak.tally.accepted)} accepted; draining (at most {args.drain:.0f}s)")
        drain_start = time.monotonic()
        if not soak.worker.alive():
            soak.worker.start()
        states = soak.drain(args.drain)
        return soak.report(states, time.monotonic() - drain_start)
    finally:
        if args.keep:
            print(f"logs kept in {soak.folder}")
        soak.stop()


if __name__ == "__main__":
    sys.exit(main())
