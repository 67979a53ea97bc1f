"""Load test: the inference server (containers/inference) against Flask + gunicorn, same model, same run.

Both servers get the same model artifact, the same feature code, the same worker count, the same
thread limits, and the same load generator on 127.0.0.1: ``wrk`` (C, one thread: it needs a small
fraction of a core, printed as ``client cpu``), or a Python asyncio client when wrk is not installed
(``apt-get install wrk``; the Python client can saturate before the servers do, so prefer wrk).

Each measurement runs a fixed number of connections for a fixed time after a warm-up, in rounds that
alternate the servers (the median round is reported), for JSON batches of 1 and 32 raw records.

    python benchmarks/inference_bench.py                 # ~2 minutes
    python benchmarks/inference_bench.py --duration 3 --rounds 1 --batch-sizes 1   # quick look

Needs: the inference server's requirements (containers/inference/requirements.txt) and
benchmarks/requirements.txt (Flask, gunicorn).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops.features import get_spec  # noqa: E402
from mlops.features.artifact import METADATA_FILE, MODEL_FILE, model_metadata  # noqa: E402
from mlops.features.spec import compute_features  # noqa: E402
from tools.emulators import stop_process_group  # noqa: E402

SPEC = get_spec("customer-churn")
PLANS = ("basic", "standard", "premium", "trial")  # "trial" is unknown to the spec: plan_tier -1


def raw_records(count: int, seed: int) -> list[dict[str, object]]:
    """Seeded synthetic raw ``customer_activity`` records."""
    rng = np.random.default_rng(seed)
    return [
        {
            "customer_id": f"c-{seed}-{i}",
            "sessions": int(rng.integers(0, 30)),
            "minutes_active": round(float(rng.uniform(0, 400)), 2),
            "support_tickets": int(rng.integers(0, 6)),
            "monthly_spend": round(float(rng.uniform(5, 150)), 2),
            "plan": PLANS[int(rng.integers(0, len(PLANS)))],
        }
        for i in range(count)
    ]


def write_model(directory: Path, kind: str) -> None:
    """A model artifact as the training step writes it, trained on synthetic records."""
    records = raw_records(2000, seed=1)
    matrix = np.array([[compute_features(SPEC, r)[n] for n in SPEC.feature_names] for r in records])
    rng = np.random.default_rng(2)
    labels = (matrix[:, 2] - 0.05 * matrix[:, 0] + rng.normal(size=len(matrix)) > 1.5).astype(int)
    model = LogisticRegression(max_iter=1000) if kind == "logreg" else GradientBoostingClassifier(random_state=0)
    model.fit(matrix, labels)
    joblib.dump(model, directory / MODEL_FILE)
    metadata = model_metadata(SPEC, framework_version=sklearn.__version__)
    (directory / METADATA_FILE).write_text(json.dumps(metadata))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def running(servers: list[Server], log_dir: Path) -> Iterator[None]:
    """Start every server (stdout/stderr to log files), wait for /ping, and always stop them."""
    try:
        for server in servers:
            log = (log_dir / f"{server.name}.log").open("wb")
            server.process = subprocess.Popen(
                server.command, env=server.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        for server in servers:
            wait_ready(server, log_dir)
        yield
    finally:
        for server in servers:
            stop(server.process)


def wait_ready(server: Server, log_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    assert server.process is not None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = (log_dir / f"{server.name}.log").read_text()[-2000:]
            raise SystemExit(f"{server.name} exited with {server.process.returncode}:\n{tail}")
        with contextlib.suppress(OSError), urllib.request.urlopen(server.url + "/ping", timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{server.name} did not answer /ping within {timeout} s")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the server's process group (its workers too), SIGKILL after 10 s."""
    if process is not None:
        stop_process_group(process, timeout=10)


def post(url: str, body: bytes) -> list[float]:
    request = urllib.request.Request(url + "/invocations", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["predictions"]


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    client_cpu: float  # client CPU seconds per wall second

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def run_wrk(url: str, body_file: Path, connections: int, seconds: float, script: Path) -> Result:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url + "/invocations",
        ],
        env={**os.environ, "BENCH_BODY_FILE": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
        client_cpu=cpu / wall,
    )


async def _python_client(
    port: int, bodies: Sequence[bytes], connections: int, seconds: float
) -> tuple[list[float], int]:
    """Closed-loop HTTP/1.1 client: ``connections`` keep-alive connections, reconnecting when the server closes.

    Connection ``i`` sends ``bodies[i]``, ``bodies[i + connections]``, ... (cycling), so one body is the same request
    over and over and a list of bodies spreads them over the connections (``entity_mode_bench.py``'s entity ids).
    """
    requests = [
        (
            f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def connection(offset: int) -> None:
        nonlocal errors
        reader = writer = None
        position = offset
        while time.perf_counter() < deadline:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            request = requests[position % len(requests)]
            position += connections
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            await reader.readexactly(int(headers.get("content-length", "0")))
            latencies.append(time.perf_counter() - started)
            if not lines[0].split()[1].startswith("2"):
                errors += 1
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection(i) for i in range(connections)))
    return latencies, errors


def run_python(port: int, bodies: Sequence[bytes], connections: int, seconds: float) -> Result:
    """The asyncio client's measurement: ``bodies`` as :func:`_python_client` sends them."""
    cpu_before = time.process_time()
    started = time.perf_counter()
    latencies, errors = asyncio.run(_python_client(port, bodies, connections, seconds))
    wall = time.perf_counter() - started
    ordered = np.sort(np.array(latencies)) * 1000
    return Result(
        requests=len(latencies),
        seconds=wall,
        p50_ms=float(np.percentile(ordered, 50)),
        p99_ms=float(np.percentile(ordered, 99)),
        errors=errors,
        client_cpu=(time.process_time() - cpu_before) / wall,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--duration", type=int, default=6, help="seconds per measurement (default 6)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per measurement (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per server and batch (default 2)")
    parser.add_argument("--batch-sizes", default="1,32", help="records per request (default 1,32)")
    parser.add_argument("--model", choices=["logreg", "gbm"], default="logreg", help="estimator to serve")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-coalesce", action="store_true", help="also run our server with coalescing off")
    args = parser.parse_args()
    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "python")
    if client == "python":
        print("wrk not found: using the Python client, which may saturate before the servers (apt-get install wrk)")
    batches = [int(size) for size in args.batch_sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="inference-bench-") as tmp:
        work = Path(tmp)
        model_dir = work / "model"
        model_dir.mkdir()
        write_model(model_dir, args.model)
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT)
        # Same thread limits for both: one BLAS/OpenMP thread per worker process.
        base_env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        python_path = os.pathsep.join([str(ROOT / "containers" / "inference"), str(ROOT)])

        def ours(port: int, **env: str) -> Server:
            command = [
                sys.executable, "-m", "inference_server", "--host", "127.0.0.1", "--port", str(port),
                "--model-dir", str(model_dir), "--workers", str(args.workers),
            ]  # fmt: skip
            return Server(
                "ours" + ("-no-coalesce" if env else ""), port, command, {**base_env, **env, "PYTHONPATH": python_path}
            )

        baseline_port = free_port()
        baseline_command = [
            sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind", f"127.0.0.1:{baseline_port}",
            "--chdir", str(ROOT / "benchmarks"), "baseline_flask_app:app",
        ]  # fmt: skip
        baseline_env = {**base_env, "MODEL_DIR": str(model_dir), "PYTHONPATH": str(ROOT)}
        servers = [Server("flask+gunicorn", baseline_port, baseline_command, baseline_env), ours(free_port())]
        if args.no_coalesce:
            servers.append(ours(free_port(), INFERENCE_COALESCE="0"))

        results: dict[tuple[str, int], list[Result]] = {}
        with running(servers, work):
            for batch in batches:
                body = json.dumps({"instances": raw_records(batch, seed=100 + batch)}).encode()
                body_file = work / f"batch-{batch}.json"
                body_file.write_bytes(body)
                answers = [np.array(post(server.url, body)) for server in servers]
                for server, answer in zip(servers[1:], answers[1:], strict=True):
                    if not np.allclose(answer, answers[0], rtol=0, atol=1e-9):
                        raise SystemExit(f"{server.name} and {servers[0].name} disagree on batch {batch}")
                for _ in range(args.rounds):
                    for server in servers:
                        if client == "wrk":
                            run_wrk(server.url, body_file, args.connections, args.warmup, script)
                            result = run_wrk(server.url, body_file, args.connections, args.duration, script)
                        else:
                            run_python(server.port, [body], args.connections, args.warmup)
                            result = run_python(server.port, [body], args.connections, args.duration)
                        results.setdefault((server.name, batch), []).append(result)

    print(
        f"\nmodel={args.model} workers={args.workers} connections={args.connections} client={client} "
        f"duration={args.duration}s x {args.rounds} rounds (median round by throughput) cpus={os.cpu_count()}"
    )
    header = f"{'server':<18} {'batch':>5} {'req/s':>9} {'rows/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'client cpu':>10}"
    print(header)
    print("-" * len(header))
    medians: dict[tuple[str, int], Result] = {}
    for batch in batches:
        for server in servers:
            runs = sorted(results[(server.name, batch)], key=lambda r: r.rps)
            median = runs[len(runs) // 2] if len(runs) % 2 else runs[len(runs) // 2 - 1]
            medians[(server.name, batch)] = median
            print(
                f"{server.name:<18} {batch:>5} {median.rps:>9.0f} {median.rps * batch:>9.0f} {median.p50_ms:>8.2f} "
                f"{median.p99_ms:>8.2f} {median.errors:>6} {median.client_cpu:>9.0%}"
            )
    print()
    ok = True
    for batch in batches:
        base = medians[("flask+gunicorn", batch)]
        for server in servers[1:]:
            mine = medians[(server.name, batch)]
            throughput, p99 = mine.rps / base.rps, mine.p99_ms / base.p99_ms
            print(f"batch {batch:>3}: {server.name} / baseline: throughput x{throughput:.2f}, p99 x{p99:.2f}")
            if server.name == "ours":
                ok = ok and throughput >= 2 and p99 <= 1 and mine.errors == 0
    spread = {
        key: statistics.pstdev([r.rps for r in runs]) / statistics.mean([r.rps for r in runs])
        for key, runs in results.items()
        if len(runs) > 1
    }
    if spread:
        print(f"largest round-to-round spread of req/s: {max(spread.values()):.0%}")
    print(f"target (ours >= 2x baseline throughput, p99 no worse, no errors): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
