"""The inference image started the way SageMaker starts it, without a container engine.

SageMaker's contract for a hosting container: it runs ``docker run <image> serve``, extracts the model
version's ``model.tar.gz`` into ``/opt/ml/model``, expects ``GET /ping`` and ``POST /invocations`` on port
8080 (or on ``SAGEMAKER_BIND_TO_PORT`` when it sets it), and stops the container with SIGTERM, then SIGKILL
30 s later. Here:

* the model is made by the pipeline's own step scripts (:func:`pipelines.local_run.run_local`) and its
  archive extracted into a folder laid out as ``opt/ml/model``;
* the image's filesystem is staged from the Dockerfile itself: each ``COPY`` line copies what the build
  context holds after ``Dockerfile.dockerignore``, to where the image would have it (a file the image lacks
  is missing here too);
* ``serve`` is started as a bare command found on ``PATH``, with no arguments, the Dockerfile's ``ENV``
  (``PYTHONPATH`` pointing into the staged tree), its ``WORKDIR``, and only what a SageMaker host varies:
  ``SAGEMAKER_BIND_TO_PORT`` (a free port instead of 8080), ``SM_MODEL_DIR`` (the staged ``opt/ml/model``,
  since the real path is not ours to write) and ``INFERENCE_HOST=127.0.0.1`` (loopback only). The worker
  count is left to the server's default, one per CPU, as on an endpoint instance.

Request parsing, refusals, logging and start-up failures are covered by ``test_inference_server.py``;
this module is about the launch contract and the image layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from infra.images.context import DockerIgnore, context_files
from mlops.features import get_spec
from mlops.features.spec import transform_frame
from pipelines.local_run import LocalRunResult
from tests.functional.test_inference_server import RAW_COLUMNS, Reply, Server, call, free_port
from tests.support.inference_artifacts import serving_pipeline_run
from tests.unit.test_inference_image import (
    DOCKERIGNORE,
    ROOT,
    context_copies,
    environment,
    is_under,
    last,
    read_instructions,
)

SPEC = get_spec("customer-churn")
START_TIMEOUT = 90  # seconds: two workers import scikit-learn on a busy 2-core machine
SAGEMAKER_STOP_GRACE = 30  # seconds between SageMaker's SIGTERM and its SIGKILL
# What the model package declares (SupportedContentTypes, SupportedResponseMIMETypes): exactly what the
# server accepts and answers (containers/inference/inference_server/payload.py).
CONTENT_TYPES = ("application/json", "text/csv")
RESPONSE_TYPES = ("application/json", "text/csv")


# --- the image's filesystem and the model, laid out as SageMaker's host has them ---------------------


def stage_image(root: Path) -> None:
    """Copy what the image's COPY lines take from the build context to where the image has it (``root`` is /)."""
    context = context_files(ROOT, DockerIgnore.read(DOCKERIGNORE))
    for copy in context_copies(read_instructions()):
        for source in copy.sources:
            files = sorted(f for f in context if is_under(f, source))
            assert files, f"COPY {source}: nothing in the build context"
            for file in files:
                if file == source:  # a file: to the destination path, or into the destination directory
                    target = copy.destination + (Path(file).name if copy.destination.endswith("/") else "")
                else:  # a directory: its contents go into the destination
                    target = copy.destination.rstrip("/") + "/" + file[len(source) + 1 :]
                staged = root / target.lstrip("/")
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / file, staged)
                if copy.chmod:
                    staged.chmod(int(copy.chmod, 8))


def image_environment(root: Path) -> tuple[dict[str, str], Path]:
    """The environment and working directory the image gives ``serve``, with paths moved under ``root``."""
    instructions = read_instructions()
    env = environment(instructions)
    env["PYTHONPATH"] = os.pathsep.join(str(root / p.lstrip("/")) for p in env.get("PYTHONPATH", "").split(":") if p)
    workdir = last(instructions, "WORKDIR")
    assert workdir is not None
    cwd = root / workdir.arguments.lstrip("/")
    cwd.mkdir(parents=True, exist_ok=True)  # Docker creates a missing WORKDIR
    return env, cwd


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> LocalRunResult:
    # A real artifact from the real step code (not a good model): the run test_serving_parity.py serves too, made
    # once per test process (about 6 s of step processes) and only read here.
    return serving_pipeline_run(tmp_path_factory)


@pytest.fixture(scope="module")
def host(pipeline_run: LocalRunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder standing for the container's /: the image's files and the extracted model."""
    root = tmp_path_factory.mktemp("container-root")
    stage_image(root)
    model_dir = root / "opt" / "ml" / "model"
    model_dir.mkdir(parents=True)
    with tarfile.open(pipeline_run.model_archive, "r:gz") as archive:
        archive.extractall(model_dir, filter="data")  # what SageMaker does with the version's model.tar.gz
    return root


# --- launching serve ---------------------------------------------------------------------------------


@contextlib.contextmanager
def sagemaker_launch(root: Path, log_path: Path) -> Iterator[Server]:
    """``serve`` started as SageMaker starts it (see the module docstring); stopped whatever happens."""
    port = free_port()
    image_env, cwd = image_environment(root)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SM_", "SAGEMAKER_", "INFERENCE_"))}
    # serve is found on PATH as in the image; its "#!/usr/bin/env python3" finds this interpreter (the
    # image's python3 stands in for it, with the same pinned packages).
    path = os.pathsep.join([str(root / "usr" / "local" / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]])
    env = inherited | image_env | {
        "PATH": path,
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SM_MODEL_DIR": str(root / "opt" / "ml" / "model"),
        "INFERENCE_HOST": "127.0.0.1",
    }  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["serve"],  # SageMaker's argument is the command itself: nothing else is passed
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown reaches the workers too
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited with {process.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(OSError):
                if call(server, "GET", "/ping", timeout=1).status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer /ping within {START_TIMEOUT} s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        kill_group(process)


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs.

    One that has exited but is not reaped yet (a zombie) does not count: when serve exits, its multiprocessing
    resource tracker is orphaned and stays a zombie until the machine's init reaps it, which some sandboxes' init
    does only every second or two. Where there is no ``/proc`` to tell, any process of the group counts.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()  # after "pid (comm)": state, ppid, pgrp, ...
        except OSError:  # exited meanwhile
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the server's process group (a no-op after a clean stop), then reap."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


class Serve:
    """The module's ``serve`` process: started on first use, then shared by the tests until one takes it over.

    A start costs seconds (the launcher, then one worker per CPU, each importing scikit-learn and loading the model).
    The request tests only need a running serve, and the SIGTERM test needs one it may stop, not a fresh one: it
    takes over the process the request tests used (it runs after them), and a test asking after that gets a new
    one. A process that died is not replaced: the next test sees it, as it would have with one process per module.
    """

    def __init__(self, root: Path, logs: Path) -> None:
        self.root, self.logs = root, logs
        self.stack = contextlib.ExitStack()  # stops the current process (see sagemaker_launch)
        self.server: Server | None = None
        self.started = 0

    def running(self) -> Server:
        if self.server is None:
            self.started += 1
            log_path = self.logs / f"serve-{self.started}.log"
            self.server = self.stack.enter_context(sagemaker_launch(self.root, log_path))
        return self.server

    @contextlib.contextmanager
    def taken_over(self) -> Iterator[Server]:
        """The running serve for a test that ends it; no other test gets it, and it is killed on exit if need be."""
        server = self.running()
        stack, self.stack, self.server = self.stack, contextlib.ExitStack(), None
        with stack:
            yield server

    def close(self) -> None:
        self.stack.close()


@pytest.fixture(scope="module")
def serve(host: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    started = Serve(host, tmp_path_factory.mktemp("logs"))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def endpoint(serve: Serve) -> Server:
    """serve as SageMaker starts it, shared by the module's request tests (see :class:`Serve`)."""
    return serve.running()


# --- requests ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def records(pipeline_run: LocalRunResult) -> pd.DataFrame:
    """Raw records as the pipeline read them (strings, byte for byte), a caller's columns only."""
    raw = pd.read_csv(pipeline_run.workdir / "data" / "raw" / "customer_activity.csv", dtype=str)
    return raw.sample(n=30, random_state=5).loc[:, list(RAW_COLUMNS)].reset_index(drop=True)


@pytest.fixture(scope="module")
def expected(host: Path, records: pd.DataFrame) -> np.ndarray:
    """The positive-class probability the model gives in process, on features computed the training way."""
    model = joblib.load(host / "opt" / "ml" / "model" / "model.joblib")
    features = transform_frame(SPEC, records.assign(customer_id="c", event_time="2024-05-01T00:00:00Z"))
    return model.predict_proba(features[list(SPEC.feature_names)])[:, 1]


def invoke(server: Server, body: bytes, content_type: str, accept: str) -> Reply:
    return call(server, "POST", "/invocations", body, {"Content-Type": content_type, "Accept": accept})


def body_of(records: pd.DataFrame, content_type: str) -> bytes:
    if content_type == "text/csv":  # a header row naming the raw columns, then the records
        return records.to_csv(index=False).encode()
    return json.dumps({"instances": records.to_dict(orient="records")}).encode()


def predictions_of(reply: Reply) -> list[float]:
    if reply.content_type == "text/csv":
        return [float(line) for line in reply.body.decode().splitlines()]
    return reply.json()["predictions"]


def test_serve_answers_ping_on_the_port_sagemaker_gives(endpoint: Server) -> None:
    reply = call(endpoint, "GET", "/ping")
    assert (reply.status, reply.content_type) == (200, "application/json")


@pytest.mark.parametrize("accept", RESPONSE_TYPES)
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_invocations_answer_the_models_own_predictions(
    endpoint: Server, records: pd.DataFrame, expected: np.ndarray, content_type: str, accept: str
) -> None:
    reply = invoke(endpoint, body_of(records, content_type), content_type, accept)
    assert reply.status == 200, reply.body
    assert reply.content_type == accept
    np.testing.assert_allclose(predictions_of(reply), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("content_type", "accept", "status"),
    [("application/x-npy", "application/json", 415), ("text/csv", "application/x-npy", 406)],
)
def test_types_the_model_package_does_not_declare_are_refused(
    endpoint: Server, records: pd.DataFrame, content_type: str, accept: str, status: int
) -> None:
    # A SageMaker caller that trusts the package's declared types never sends these; the server says so.
    reply = invoke(endpoint, body_of(records, "text/csv"), content_type, accept)
    assert reply.status == status


def test_serve_stops_on_sigterm_within_sagemakers_grace_period(serve: Serve) -> None:
    # SageMaker signals the container's PID 1 (serve) only; the workers must stop with it, before SIGKILL.
    # The process the tests above sent requests to, as on an endpoint: this test ends it (see Serve).
    with serve.taken_over() as server:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=SAGEMAKER_STOP_GRACE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve outlived SIGTERM by {SAGEMAKER_STOP_GRACE} s:\n{server.log_path.read_text()}")
        assert server.process.returncode == 0, server.log_path.read_text()  # an orderly stop, not a crash
        deadline = time.monotonic() + 5
        while group_alive(server.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not group_alive(server.process.pid), "worker processes outlived serve"
