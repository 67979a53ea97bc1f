"""Load test: the inference server in entity request mode (online lookup) against rows mode, same run.

Three servers on the same model and worker count: ``rows`` (requests carry the raw records), ``entity``
(requests carry entity ids; every request reads the online store) and ``entity+cache`` (a per-process TTL cache
in front of the store). The online store is the Feature Store runtime's HTTP API answered locally with a fixed
latency (``--store-latency-ms``, default 2 ms: the order of a real GetRecord from the same region) by
``tests/support/featurestore_http.py`` in a process of its own, holding ``--entities`` records written with the
ingestion path's exact PutRecord payload. Requests pick entities uniformly at random (seeded), so the cache's hit
rate is what a uniform key space gives, not a single hot key; ``GetRecord/req`` is measured during each round.

    python benchmarks/entity_mode_bench.py                     # ~2 minutes
    python benchmarks/entity_mode_bench.py --duration 3 --rounds 1 --batch-sizes 1

The client is the closed-loop asyncio client of ``inference_bench.py`` with a body per request (wrk would need a
Lua script per mode); on 2 shared cores it competes with the servers and the store, so compare ratios, not totals.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import tempfile
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from inference_bench import (  # noqa: E402
    Result,
    Server,
    free_port,
    post,
    raw_records,
    run_python,
    running,
    write_model,
)

from mlops.features import get_spec  # noqa: E402
from mlops.features.spec import feature_record  # noqa: E402
from mlops.featurestore.records import to_put_record_payload  # noqa: E402

SPEC = get_spec("customer-churn")
GROUP = "bench-customer-churn-v1"
RAW = ("sessions", "minutes_active", "support_tickets", "monthly_spend", "plan")


def entities(count: int) -> list[dict[str, object]]:
    return [{**r, "event_time": "2024-05-01T00:00:00Z"} for r in raw_records(count, seed=7)]


def serve_store(conn: Connection, latency_s: float, count: int) -> None:
    """Child process: the fake store with ``count`` records behind the runtime's HTTP API, until told to stop."""
    from tests.support.featurestore_fake import FeatureStoreFake
    from tests.support.featurestore_http import FeatureStoreHttp

    store = FeatureStoreFake()
    store.add_spec_group(GROUP, SPEC, offline=False)
    for record in entities(count):
        store.put_record(FeatureGroupName=GROUP, Record=to_put_record_payload(SPEC, feature_record(SPEC, record)))
    with FeatureStoreHttp(store, delay_seconds=latency_s) as http:
        conn.send(http.url)
        conn.recv()  # block until the parent is done


def store_gets(url: str) -> int:
    with urllib.request.urlopen(url + "/_stats", timeout=5) as response:
        return int(json.loads(response.read())["gets"])


def request_bodies(pool: list[dict[str, object]], batch: int, mode: str, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        chosen = [pool[rng.randrange(len(pool))] for _ in range(batch)]
        if mode == "rows":
            items: list[dict[str, object]] = [{k: r[k] for k in RAW} for r in chosen]
        else:
            items = [{"entityId": r["customer_id"]} for r in chosen]
        bodies.append(json.dumps({"instances": items}).encode())
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--duration", type=int, default=6, help="seconds per measurement (default 6)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per measurement (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per server and batch (default 2)")
    parser.add_argument("--batch-sizes", default="1,32", help="records per request (default 1,32)")
    parser.add_argument("--entities", type=int, default=5000, help="records in the online store (default 5000)")
    parser.add_argument("--store-latency-ms", type=float, default=2.0, help="the store's answer time (default 2)")
    parser.add_argument("--cache-ttl", type=int, default=300, help="entity+cache: cache TTL seconds (default 300)")
    parser.add_argument("--timeout-ms", type=int, default=1000, help="lookup timeout (default 1000)")
    args = parser.parse_args()
    batches = [int(size) for size in args.batch_sizes.split(",")]
    pool = entities(args.entities)

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    store = context.Process(target=serve_store, args=(child, args.store_latency_ms / 1000, args.entities), daemon=True)
    store.start()
    store_url = parent.recv()
    try:
        with tempfile.TemporaryDirectory(prefix="entity-bench-") as tmp:
            work = Path(tmp)
            model_dir = work / "model"
            model_dir.mkdir()
            write_model(model_dir, "logreg")
            base_env = {
                **os.environ,
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([str(ROOT / "containers" / "inference"), str(ROOT)]),
                "INFERENCE_LOG_LEVEL": "WARNING",  # one log line per request would be part of what is measured
            }
            entity_env = {
                "INFERENCE_REQUEST_MODE": "entity",
                "INFERENCE_FEATURE_GROUP": GROUP,
                "INFERENCE_ONLINE_REGION": "eu-west-1",
                "INFERENCE_ONLINE_TIMEOUT_MS": str(args.timeout_ms),
                "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": store_url,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
            }

            def server(name: str, **env: str) -> Server:
                port = free_port()
                command = [
                    sys.executable, "-m", "inference_server", "--host", "127.0.0.1", "--port", str(port),
                    "--model-dir", str(model_dir), "--workers", str(args.workers),
                ]  # fmt: skip
                return Server(name, port, command, {**base_env, **env})

            servers = [
                server("rows"),
                server("entity", **entity_env),
                server("entity+cache", **entity_env, INFERENCE_ONLINE_CACHE_TTL_SECONDS=str(args.cache_ttl)),
            ]
            results: dict[tuple[str, int], list[tuple[Result, float]]] = {}
            with running(servers, work):
                for batch in batches:
                    # Same entities, same order: every mode must give the same predictions.
                    check = request_bodies(pool, batch, "rows", 1, seed=batch)[0]
                    ids = request_bodies(pool, batch, "entity", 1, seed=batch)[0]
                    want = np.array(post(servers[0].url, check))
                    for other in servers[1:]:
                        if not np.allclose(np.array(post(other.url, ids)), want, rtol=0, atol=1e-12):
                            raise SystemExit(f"{other.name} disagrees with rows mode on batch {batch}")
                    for round_ in range(args.rounds):
                        for srv in servers:
                            mode = "rows" if srv.name == "rows" else "entity"
                            bodies = request_bodies(pool, batch, mode, 20000 // batch, seed=1000 * round_ + batch)
                            run_python(srv.port, bodies, args.connections, args.warmup)
                            before = store_gets(store_url)
                            result = run_python(srv.port, bodies, args.connections, args.duration)
                            per_request = (store_gets(store_url) - before) / max(result.requests, 1)
                            results.setdefault((srv.name, batch), []).append((result, per_request))
    finally:
        parent.send("stop")
        store.join(timeout=10)
        if store.is_alive():
            store.kill()

    print(
        f"\nworkers={args.workers} connections={args.connections} duration={args.duration}s x {args.rounds} rounds "
        f"(median round by throughput) store latency={args.store_latency_ms:g} ms entities={args.entities} "
        f"cache ttl={args.cache_ttl}s cpus={os.cpu_count()}"
    )
    header = (
        f"{'mode':<13} {'batch':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'GetRecord/req':>13} {'errors':>6} "
        f"{'req/s vs rows':>13} {'p99 vs rows':>11}"
    )
    print(header)
    print("-" * len(header))
    for batch in batches:
        medians = {}
        for srv_name in ("rows", "entity", "entity+cache"):
            runs = sorted(results[(srv_name, batch)], key=lambda pair: pair[0].rps)
            medians[srv_name] = runs[(len(runs) - 1) // 2]
        rows = medians["rows"][0]
        for srv_name, (result, per_request) in medians.items():
            print(
                f"{srv_name:<13} {batch:>5} {result.rps:>8.0f} {result.p50_ms:>8.2f} {result.p99_ms:>8.2f} "
                f"{per_request:>13.2f} {result.errors:>6} {result.rps / rows.rps:>12.2f}x {result.p99_ms / rows.p99_ms:>10.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
