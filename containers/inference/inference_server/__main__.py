"""Command line: ``python -m inference_server [serve] [--model-dir DIR] [--host H] [--port P] [--workers N]``.

The model is loaded and checked here, before any worker starts, so a bad artifact stops the
container at once with exit status 2 and one line saying which file is wrong and why.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import uvicorn

from mlops.featurestore.online import online_client

from .app import build_app
from .errors import ModelLoadError
from .logs import configure_logging
from .model import load_model
from .protocol import LimitedHttpToolsProtocol
from .settings import Settings, SettingsError

EXIT_BAD_MODEL = 2
EXIT_BAD_SETTINGS = 3

log = logging.getLogger("inference_server")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="serve", description="SageMaker inference server for a scikit-learn model")
    parser.add_argument(
        "command", nargs="?", choices=["serve"], help="accepted for SageMaker's 'docker run image serve'"
    )
    parser.add_argument("--model-dir", help="model artifact directory (env SM_MODEL_DIR, default /opt/ml/model)")
    parser.add_argument("--host", help="bind address (env INFERENCE_HOST, default 0.0.0.0: all interfaces)")
    parser.add_argument("--port", type=int, help="port (env SAGEMAKER_BIND_TO_PORT, default 8080)")
    parser.add_argument(
        "--workers", type=int, help="worker processes (env SAGEMAKER_MODEL_SERVER_WORKERS; 0 = per CPU)"
    )
    parser.add_argument("--max-rows", type=int, help="records per request (env INFERENCE_MAX_ROWS, default 10000)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Check settings and model, then serve until stopped. Returns the process exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings.from_env(
            model_dir=args.model_dir, host=args.host, port=args.port, workers=args.workers, max_rows=args.max_rows
        )
    except SettingsError as exc:
        print(f"inference server cannot start: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    if settings.request_mode == "entity":
        try:  # a client that cannot be made (a region botocore refuses) stops the container here, not per request
            online_client(
                region_name=settings.online_region,
                timeout_seconds=settings.online_timeout_ms / 1000,
                max_attempts=settings.online_max_attempts,
            )
        except Exception as exc:  # botocore raises several types; all mean "cannot start"
            print(f"inference server cannot start: online feature store client: {exc}", file=sys.stderr)
            return EXIT_BAD_SETTINGS
    configure_logging(settings.log_level)
    try:
        model = load_model(settings.model_dir)
    except ModelLoadError as exc:
        log.error("model cannot be served", extra={"error": str(exc)})
        print(f"inference server cannot start: {exc}", file=sys.stderr)
        return EXIT_BAD_MODEL
    workers = settings.worker_count
    log.info(
        "serving",
        extra={
            "model_dir": settings.model_dir,
            "feature_spec": model.spec.name,
            "feature_spec_version": model.spec.version,
            "host": settings.host,
            "port": settings.port,
            "workers": workers,
            "coalesce": settings.coalesce,
            "header_timeout": settings.header_timeout,
            "body_timeout": settings.body_timeout,
            "keep_alive_timeout": settings.keep_alive_timeout,
            "max_connections": settings.max_connections,
            "request_mode": settings.request_mode,
            **(
                {
                    "feature_group": settings.feature_group,
                    "online_region": settings.online_region,
                    "online_timeout_ms": settings.online_timeout_ms,
                    "online_max_attempts": settings.online_max_attempts,
                    "online_cache_ttl_seconds": settings.online_cache_ttl_seconds,
                    "online_cache_max_entries": settings.online_cache_max_entries,
                }
                if settings.request_mode == "entity"
                else {}
            ),
        },
    )
    common = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        # uvicorn's httptools protocol plus the header timeout, header size limit and connection cap it lacks;
        # spawned workers import the class by name and read the limits from their app's settings.
        "http": LimitedHttpToolsProtocol,
        "ws": "none",  # two HTTP routes: no upgrade to WebSocket
        "proxy_headers": False,  # the app never reads the client address
        "lifespan": "off",
        "access_log": False,  # our own request log line replaces uvicorn's
        "log_config": None,
        "server_header": False,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "backlog": 2048,
        # Spawned workers import scikit-learn and load the model before answering the supervisor's health
        # check; uvicorn's 5 s default kills (and endlessly restarts) workers of a big model on a busy host.
        "timeout_worker_healthcheck": settings.worker_start_timeout,
    }
    if workers == 1:
        uvicorn.run(build_app(model, settings), **common)
    else:
        # Worker processes are spawned: they read the settings from the environment and load the model again.
        os.environ.update(settings.to_env())
        uvicorn.run("inference_server.app:create_app", factory=True, workers=workers, **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
