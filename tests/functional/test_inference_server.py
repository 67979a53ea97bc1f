"""The inference container's server, run for real on 127.0.0.1 against a model artifact made here.

Covers SageMaker's container contract (``GET /ping``, ``POST /invocations``), parity with the
training path (predictions equal ``predict_proba`` of the vectors the feature spec computes offline),
refusals of malformed requests (4xx with a JSON message, never 500), the request log, the connection
limits (header and body timeouts, idle connections, the connection cap) over raw sockets, and start-up
failures on a bad artifact (non-zero exit naming the file and the problem).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression

from mlops.features import get_spec
from mlops.features.artifact import METADATA_FILE, MODEL_FILE, model_metadata
from mlops.features.spec import frame_to_vectors, transform_frame
from tools.emulators import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
SERVER_DIR = ROOT / "containers" / "inference"
SPEC = get_spec("customer-churn")
PLANS = ("basic", "standard", "premium", "trial")
RAW_COLUMNS = ("sessions", "minutes_active", "support_tickets", "monthly_spend", "plan")
MAX_ROWS = 40
MAX_BODY_BYTES = 64 * 1024
START_TIMEOUT = 60  # seconds; imports are slow on a busy 2-core machine
LOG_WAIT = 5.0  # seconds a busy machine may take to write a request's log line after its answer


def raw_records(count: int, seed: int) -> list[dict[str, object]]:
    """Seeded synthetic raw ``customer_activity`` records (identifier and event time included)."""
    rng = np.random.default_rng(seed)
    return [
        {
            "customer_id": f"c-{seed}-{i}",
            "event_time": "2024-05-01T12:00:00Z",
            "sessions": int(rng.integers(0, 30)),
            "minutes_active": round(float(rng.uniform(0, 400)), 3),
            "support_tickets": int(rng.integers(0, 6)),
            "monthly_spend": round(float(rng.uniform(5, 150)), 2),
            "plan": PLANS[int(rng.integers(0, len(PLANS)))],
        }
        for i in range(count)
    ]


def offline_vectors(records: list[dict[str, object]]) -> np.ndarray:
    """Model input vectors computed the training way: the spec's frame transform, then its vectors."""
    return np.array(frame_to_vectors(SPEC, transform_frame(SPEC, pd.DataFrame(records))), dtype=np.float64)


def write_artifact(directory: Path) -> LogisticRegression:
    """model.joblib + model-metadata.json as the training step writes them; returns the model."""
    records = raw_records(400, seed=1)
    vectors = offline_vectors(records)
    rng = np.random.default_rng(2)
    labels = (vectors[:, 2] - 0.05 * vectors[:, 0] + rng.normal(size=len(vectors)) > 1.5).astype(int)
    model = LogisticRegression(max_iter=1000).fit(vectors, labels)
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / MODEL_FILE)
    metadata = model_metadata(SPEC, framework_version=sklearn.__version__)
    (directory / METADATA_FILE).write_text(json.dumps(metadata))
    return model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SERVER_DIR), str(ROOT)]),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def server_command(model_dir: Path, port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "inference_server", "--host", "127.0.0.1", "--port", str(port),
        "--model-dir", str(model_dir), "--workers", str(workers),
    ]  # fmt: skip


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (workers included); SIGKILL if it lingers."""
    stop_process_group(process, timeout=15)


@contextlib.contextmanager
def running_server(
    model_dir: Path, log_path: Path, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[Server]:  # fmt: skip
    port = free_port()
    limits = {"INFERENCE_MAX_ROWS": str(MAX_ROWS), "INFERENCE_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(model_dir, port, workers),
            env=server_env(**limits, **(env or {})),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown stops the workers too
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(OSError):
                if call(server, "GET", "/ping", timeout=1).status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer /ping within {START_TIMEOUT} s:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield server
    finally:
        stop(process)


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    server: Server, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Reply:  # fmt: skip
    request = urllib.request.Request(server.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.headers.get("Content-Type", ""), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers.get("Content-Type", ""), error.read())


def invoke(server: Server, body: bytes, content_type: str, accept: str | None = None) -> Reply:
    headers = {"Content-Type": content_type} | ({"Accept": accept} if accept else {})
    return call(server, "POST", "/invocations", body, headers)


def to_csv(records: list[dict[str, object]], columns: tuple[str, ...] = RAW_COLUMNS) -> bytes:
    lines = [",".join(columns)] + [",".join(str(record[c]) for c in columns) for record in records]
    return ("\n".join(lines) + "\n").encode()


def raw_only(record: dict[str, object]) -> dict[str, object]:
    """What a caller sends for inference: the raw columns, no identifier or event time."""
    return {column: record[column] for column in RAW_COLUMNS}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LogisticRegression]:
    directory = tmp_path_factory.mktemp("model")
    return directory, write_artifact(directory)


@pytest.fixture(scope="module")
def server(artifact: tuple[Path, LogisticRegression], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(artifact[0], tmp_path_factory.mktemp("logs") / "server.log") as started:
        yield started


@pytest.fixture(scope="module")
def model(artifact: tuple[Path, LogisticRegression]) -> LogisticRegression:
    return artifact[1]


def expected(model: LogisticRegression, records: list[dict[str, object]]) -> np.ndarray:
    return model.predict_proba(offline_vectors(records))[:, 1]


def log_size(server: Server) -> int:
    """Where the server's log ends now (for :func:`wait_for_log_line`)."""
    return server.log_path.stat().st_size


def wait_for_log_line(server: Server, after: int, until: Callable[[dict[str, Any]], bool]) -> None:
    """Wait until the server's log has, after byte ``after``, a JSON line for which ``until`` holds.

    The server writes a request's line just after sending the answer, so the line may trail the answer. A poll
    instead of a fixed pause: it returns as soon as the line is there, and gives up after ``LOG_WAIT`` s, leaving
    the caller's assertions on the log to say what is missing.
    """
    deadline = time.monotonic() + LOG_WAIT
    while time.monotonic() < deadline:
        with server.log_path.open("rb") as log:
            log.seek(after)
            lines = log.read().splitlines()
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and until(entry):
                    return
        time.sleep(0.01)


# --- SageMaker's contract ----------------------------------------------------------------------


def test_ping_answers_200_once_the_model_is_loaded(server: Server) -> None:
    reply = call(server, "GET", "/ping")
    assert reply.status == 200


def test_csv_batch_with_csv_accept_matches_predict_proba_of_offline_vectors(server: Server, model) -> None:
    records = raw_records(25, seed=10)
    reply = invoke(server, to_csv(records), "text/csv", accept="text/csv")
    assert reply.status == 200
    assert reply.content_type == "text/csv"
    predictions = np.array([float(line) for line in reply.body.decode().splitlines()])
    np.testing.assert_allclose(predictions, expected(model, records), rtol=0, atol=1e-9)


def test_csv_request_is_answered_in_json_by_default(server: Server, model) -> None:
    records = raw_records(3, seed=11)
    reply = invoke(server, to_csv(records), "text/csv; charset=utf-8")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    np.testing.assert_allclose(reply.json()["predictions"], expected(model, records), rtol=0, atol=1e-9)


def test_json_single_record_matches_predict_proba(server: Server, model) -> None:
    record = raw_records(1, seed=12)[0]
    reply = invoke(server, json.dumps(raw_only(record)).encode(), "application/json")
    assert reply.status == 200
    np.testing.assert_allclose(reply.json()["predictions"], expected(model, [record]), rtol=0, atol=1e-9)


def test_json_batch_matches_predict_proba_row_for_row(server: Server, model) -> None:
    records = raw_records(MAX_ROWS, seed=13)
    body = json.dumps({"instances": [raw_only(r) for r in records]}).encode()
    reply = invoke(server, body, "application/json", accept="application/json")
    assert reply.status == 200
    predictions = reply.json()["predictions"]
    assert len(predictions) == MAX_ROWS
    np.testing.assert_allclose(predictions, expected(model, records), rtol=0, atol=1e-9)


def test_concurrent_requests_get_their_own_predictions(server: Server, model) -> None:
    """Requests predicted together (coalesced) still get exactly their own rows back."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [raw_records(size, seed=100 + size) for size in (1, 7, 2, 13, 5, 1, 9, 3)]

    def send(records: list[dict[str, object]]) -> list[float]:
        reply = invoke(server, json.dumps({"instances": [raw_only(r) for r in records]}).encode(), "application/json")
        assert reply.status == 200
        return reply.json()["predictions"]

    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        answers = list(pool.map(send, batches * 3))
    for records, answer in zip(batches * 3, answers, strict=True):
        np.testing.assert_allclose(answer, expected(model, records), rtol=0, atol=1e-9)


def test_string_numbers_in_json_are_read_like_csv_values(server: Server, model) -> None:
    record = raw_records(1, seed=14)[0]
    as_strings = {column: str(value) for column, value in raw_only(record).items()}
    reply = invoke(server, json.dumps(as_strings).encode(), "application/json")
    assert reply.status == 200
    np.testing.assert_allclose(reply.json()["predictions"], expected(model, [record]), rtol=0, atol=1e-9)


# --- refusals: 4xx with a JSON message, never 500 -----------------------------------------------

GOOD = raw_only(raw_records(1, seed=20)[0])


def _with(**changes: object) -> bytes:
    return json.dumps(GOOD | changes).encode()


def _without(column: str) -> bytes:
    return json.dumps({k: v for k, v in GOOD.items() if k != column}).encode()


MALFORMED = {
    "bad json": (b'{"sessions": 3,', "application/json", None, 400, "malformed JSON"),
    "json array": (b"[1, 2]", "application/json", None, 400, "must be an object"),
    "instances not a list": (b'{"instances": {"a": 1}}', "application/json", None, 400, "non-empty list"),
    "empty instances": (b'{"instances": []}', "application/json", None, 400, "non-empty list"),
    "instance not an object": (b'{"instances": [1]}', "application/json", None, 400, '"instances"[0]'),
    "missing column": (_without("plan"), "application/json", None, 400, "lacks column 'plan'"),
    "non-numeric value": (_with(sessions="many"), "application/json", None, 400, "record 0"),
    "null value": (_with(monthly_spend=None), "application/json", None, 400, "record 0: field 'monthly_spend' is null"),
    "boolean value": (_with(sessions=True), "application/json", None, 400, "record 0: field 'sessions' is a boolean"),
    "boolean plan": (_with(plan=False), "application/json", None, 400, "record 0: field 'plan' is a boolean"),
    "non-finite value": (_with(monthly_spend="inf"), "application/json", None, 400, "monthly_spend"),
    "empty body": (b"", "application/json", None, 400, "empty"),
    "whitespace body": (b"  \n", "text/csv", None, 400, "empty"),
    "unsupported content type": (b"sessions=3", "application/x-www-form-urlencoded", None, 415, "not supported"),
    "no content type": (b"{}", "", None, 415, "not supported"),
    "unacceptable accept": (_with(), "application/json", "application/xml", 406, "cannot answer"),
    "csv missing column": (b"sessions,plan\n3,basic\n", "text/csv", None, 400, "lacks column 'minutes_active'"),
    "csv ragged row": (to_csv([GOOD]) + b"1,2\n", "text/csv", None, 400, "has 2 fields"),
    "csv header only": (b"sessions,minutes_active\n", "text/csv", None, 400, "no records"),
    "csv non-numeric": (to_csv([GOOD | {"sessions": "x"}]), "text/csv", None, 400, "could not convert"),
    "csv not utf-8": (b"sessions\n\xff\xfe\n", "text/csv", None, 400, "not UTF-8"),
    "csv unterminated quote": (
        to_csv([GOOD]) + b'3,40,1,20,"premium\n', "text/csv", None, 400, "quoted field is not closed",
    ),
    "too many rows": (
        json.dumps({"instances": [GOOD] * (MAX_ROWS + 1)}).encode(), "application/json", None, 413, "limit of 40",
    ),
    "too many csv rows": (to_csv([GOOD] * (MAX_ROWS + 1)), "text/csv", None, 413, "limit of 40"),
    "body too large": (b" " * (MAX_BODY_BYTES + 1), "application/json", None, 413, "exceeds"),
}  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_gets_4xx_with_message(server: Server, case: tuple) -> None:
    body, content_type, accept, status, fragment = case
    headers = {"Content-Type": content_type} if content_type else {}
    if accept:
        headers["Accept"] = accept
    reply = call(server, "POST", "/invocations", body, headers)
    assert reply.status == status, reply.body
    assert reply.content_type == "application/json"
    message = reply.json()["message"]
    assert fragment in message


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/invocations", 405), ("GET", "/models", 404)])
def test_wrong_route_gets_4xx_with_message(server: Server, method: str, path: str, status: int) -> None:
    reply = call(server, method, path)
    assert reply.status == status
    assert reply.json()["message"]


def test_server_still_serves_after_refusals(server: Server, model) -> None:
    for body, content_type, accept, _, _ in MALFORMED.values():
        call(server, "POST", "/invocations", body, {"Content-Type": content_type or "x/y", "Accept": accept or "*/*"})
    record = raw_records(1, seed=21)[0]
    reply = invoke(server, json.dumps(raw_only(record)).encode(), "application/json")
    assert reply.status == 200
    np.testing.assert_allclose(reply.json()["predictions"], expected(model, [record]), rtol=0, atol=1e-9)


# --- request log ------------------------------------------------------------------------------------


def test_each_request_logs_one_json_line_without_payload(server: Server) -> None:
    marker = "zz-private-plan-value"
    mark, served = log_size(server), _with(plan=marker)
    invoke(server, _with(plan=marker, sessions=f"{marker}-sessions"), "application/json")  # refused: 400
    invoke(server, served, "application/json")  # served: 200
    # Until the served request's line is in (after the mark, of its size: not the previous test's last line).
    wait_for_log_line(server, mark, lambda e: e.get("status") == 200 and e.get("bytes") == len(served))
    text = server.log_path.read_text()
    assert marker not in text
    entries = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    requests = [e for e in entries if e["message"] == "request" and e["path"] == "/invocations"]
    assert {"status", "latency_ms", "rows", "method"} <= requests[-1].keys()
    assert [e["status"] for e in requests[-2:]] == [400, 200]
    assert requests[-1]["rows"] == 1
    assert requests[-2]["error"] == "bad_record"


# --- connection limits, over raw sockets ---------------------------------------------------------------

# Short, so that the tests waiting for a limit to act take little time, yet far above what a loaded machine adds to
# a step that must finish within one (0.1 s between two writes of one request's headers; 0.1 s between trickled
# bytes), and test_kept_alive_... pauses 1.5 header timeouts (0.9 s) between two requests, more than 1 s under the
# keep-alive timeout (an integer number of seconds, at least 1).
HEADER_TIMEOUT = 0.6
BODY_TIMEOUT = 0.75
KEEP_ALIVE_TIMEOUT = 2
MAX_CONNECTIONS = 3
MAX_HEADER_BYTES = 4096
SLACK = 3.0  # seconds a busy 2-core machine may add before the server acts on a deadline
LIMITS = {
    "INFERENCE_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    "INFERENCE_BODY_TIMEOUT": str(BODY_TIMEOUT),
    "INFERENCE_KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE_TIMEOUT),
    "INFERENCE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    "INFERENCE_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
}


@pytest.fixture(scope="module")
def limited(artifact: tuple[Path, LogisticRegression], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with short timeouts and a small connection cap, so the limits show within seconds."""
    with running_server(artifact[0], tmp_path_factory.mktemp("logs") / "limited.log", env=LIMITS) as started:
        yield started


@contextlib.contextmanager
def connection(server: Server) -> Iterator[socket.socket]:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        yield sock
    finally:
        sock.close()


def request_head(method: str, path: str, content_length: int | None = None) -> bytes:
    length = f"Content-Length: {content_length}\r\n" if content_length is not None else ""
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{length}\r\n".encode()


def until_closed(sock: socket.socket, wait: float, since: float | None = None) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and the seconds that took (``wait`` at most).

    ``since``: when to count from (``time.monotonic()``), taken before the bytes the server's deadline counts from
    were sent, so that a pause of this process between sending and waiting cannot make a deadline look early.
    """
    started = time.monotonic() if since is None else since
    received = b""
    sock.settimeout(wait)
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received, time.monotonic() - started


def trickle_until_closed(sock: socket.socket, data: bytes, interval: float, wait: float) -> tuple[bytes, float]:
    """Send ``data`` one byte every ``interval`` s until the server answers or closes; what it sent, and when."""
    started = time.monotonic()
    for byte in data:
        readable, _, _ = select.select([sock], [], [], interval)
        if readable or time.monotonic() - started > wait:
            break
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
    received, _ = until_closed(sock, max(0.1, wait - (time.monotonic() - started)))
    return received, time.monotonic() - started


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (head, then Content-Length bytes of body): a single recv may return only part
    of it when the server writes head and body separately, which a loaded machine makes likely."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def json_body(response: bytes) -> Any:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


def test_partial_headers_get_a_408_and_the_connection_closed(limited: Server) -> None:
    with connection(limited) as sock:
        sent = time.monotonic()
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: test\r\n")  # the blank line never comes
        response, elapsed = until_closed(sock, HEADER_TIMEOUT + SLACK, since=sent)
    assert status_of(response) == 408, response
    assert "headers" in json_body(response)["message"]
    assert HEADER_TIMEOUT * 0.8 <= elapsed < HEADER_TIMEOUT + SLACK


def test_headers_sent_a_byte_at_a_time_are_cut_at_the_header_timeout(limited: Server) -> None:
    # Slowloris: every byte arrives well within any idle timeout, but the headers never end in time.
    with connection(limited) as sock:
        response, elapsed = trickle_until_closed(sock, request_head("GET", "/ping") * 50, 0.1, HEADER_TIMEOUT + SLACK)
    assert elapsed < HEADER_TIMEOUT + SLACK
    assert status_of(response) in (0, 408), response  # 0: reset before the 408 could be read


def test_oversized_headers_get_a_431(limited: Server) -> None:
    with connection(limited) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Padding: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n")
        response, _ = until_closed(sock, SLACK)
    assert status_of(response) == 431, response
    assert f"exceed {MAX_HEADER_BYTES} bytes" in json_body(response)["message"]


def test_header_that_never_ends_is_cut_by_size_before_the_timeout(limited: Server) -> None:
    # httptools hands over a header only once it is complete: the size must be counted as the bytes arrive.
    with connection(limited) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nX-Padding: " + b"a" * (2 * MAX_HEADER_BYTES))
        response, elapsed = until_closed(sock, HEADER_TIMEOUT + SLACK)
    assert status_of(response) == 431, response
    assert elapsed < HEADER_TIMEOUT * 0.8


def test_body_is_not_counted_as_headers_when_the_blank_line_straddles_two_reads(limited: Server) -> None:
    # The size limit counts up to the blank line; split inside it, the body that follows must not count.
    body = json.dumps(GOOD).encode() + b" " * (2 * MAX_HEADER_BYTES)  # JSON allows trailing whitespace
    head = request_head("POST", "/invocations", content_length=len(body))
    with connection(limited) as sock:
        sock.sendall(head[:-1])  # ends in "\r\n\r"
        time.sleep(0.1)  # a separate read on the server, well within the header timeout
        sock.sendall(head[-1:] + body)
        response = read_response(sock)
    assert status_of(response) == 200, response


def test_stalled_body_gets_a_408_with_a_reason(limited: Server) -> None:
    with connection(limited) as sock:
        sent = time.monotonic()
        sock.sendall(request_head("POST", "/invocations", content_length=500) + b'{"instances": [')
        response, elapsed = until_closed(sock, BODY_TIMEOUT + SLACK, since=sent)
    assert status_of(response) == 408, response
    assert f"not received within {BODY_TIMEOUT} s" in json_body(response)["message"]
    assert b"connection: close" in response.lower()
    assert BODY_TIMEOUT * 0.8 <= elapsed < BODY_TIMEOUT + SLACK


def test_body_sent_a_byte_at_a_time_is_cut_at_the_body_timeout(limited: Server) -> None:
    # The deadline covers the whole body, not the gap between two bytes.
    body = json.dumps({"instances": [GOOD] * 3}).encode()
    with connection(limited) as sock:
        sock.sendall(request_head("POST", "/invocations", content_length=len(body)))
        response, elapsed = trickle_until_closed(sock, body, 0.1, BODY_TIMEOUT + SLACK)
    assert elapsed < BODY_TIMEOUT + SLACK
    assert status_of(response) in (0, 408), response


def test_idle_connection_is_closed_after_the_keep_alive_timeout(limited: Server) -> None:
    connecting = time.monotonic()
    with connection(limited) as sock:  # connects and never sends a byte
        response, elapsed = until_closed(sock, KEEP_ALIVE_TIMEOUT + SLACK, since=connecting)
    assert response == b""
    assert KEEP_ALIVE_TIMEOUT * 0.8 <= elapsed < KEEP_ALIVE_TIMEOUT + SLACK


def test_body_left_unread_by_an_early_answer_must_still_arrive_in_time(limited: Server) -> None:
    # 405 is answered from the headers alone; the connection must not wait forever for the announced body.
    with connection(limited) as sock:
        sock.sendall(request_head("PUT", "/invocations", content_length=1000) + b"{")
        response, elapsed = until_closed(sock, BODY_TIMEOUT + SLACK)
    assert status_of(response) == 405, response
    assert elapsed < BODY_TIMEOUT + SLACK


def test_kept_alive_connection_gets_a_fresh_header_deadline_per_request(limited: Server) -> None:
    # The header clock starts at a request's first byte: a pause between requests (shorter than the keep-alive
    # timeout, longer than the header timeout) must not count against the next request.
    with connection(limited) as sock:
        for pause in (HEADER_TIMEOUT * 1.5, None):  # only the pause between the two requests matters
            sock.sendall(request_head("GET", "/ping"))
            response = read_response(sock)
            assert status_of(response) == 200, response
            if pause is not None:
                time.sleep(pause)


def test_pipelined_requests_are_all_answered_in_order(limited: Server) -> None:
    # Requests written back to back: the header clock of each starts at its own first byte, none is cut.
    body = json.dumps(GOOD).encode()
    batch = request_head("POST", "/invocations", content_length=len(body)) + body + request_head("GET", "/ping")
    with connection(limited) as sock:
        sock.sendall(batch + request_head("GET", "/nowhere"))
        received = b""
        while received.count(b"HTTP/1.1 ") < 3:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    assert [status_of(b"HTTP/1.1 " + part) for part in received.split(b"HTTP/1.1 ")[1:]] == [200, 200, 404]


def test_chunked_body_is_read_like_any_other(limited: Server, model) -> None:
    record = raw_records(1, seed=40)[0]
    body = json.dumps(raw_only(record)).encode()
    head = b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:])) + b"0\r\n\r\n"
    with connection(limited) as sock:
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        response = read_response(sock)
    assert status_of(response) == 200, response
    np.testing.assert_allclose(json_body(response)["predictions"], expected(model, [record]), rtol=0, atol=1e-9)


def test_connections_over_the_cap_get_a_503_and_are_closed(limited: Server) -> None:
    time.sleep(0.5)  # the server sees the closes of the previous tests' connections
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(connection(limited)) for _ in range(MAX_CONNECTIONS)]
        for sock in held:  # each served: the cap counts them, it does not refuse them
            sock.sendall(request_head("GET", "/ping"))
            assert status_of(read_response(sock)) == 200
        with connection(limited) as extra:
            extra.sendall(request_head("GET", "/ping"))
            response, _ = until_closed(extra, SLACK)
        assert status_of(response) == 503, response
        assert json_body(response)["message"]
        held[0].close()
        # A freed slot serves again, once the server has seen the close: tried until it does (each refused try is
        # answered 503 and closed by the server, so it holds no slot), for SLACK s at most.
        deadline = time.monotonic() + SLACK
        while True:
            with connection(limited) as again:
                again.sendall(request_head("GET", "/ping"))
                status = status_of(read_response(again))
            if status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert status == 200


def test_limits_are_logged_with_their_error_code(limited: Server) -> None:
    mark = log_size(limited)
    with connection(limited) as sock:
        sock.sendall(request_head("POST", "/invocations", content_length=50) + b"{")
        until_closed(sock, BODY_TIMEOUT + SLACK)
    wait_for_log_line(limited, mark, lambda e: e.get("error") == "body_timeout")
    entries = [json.loads(line) for line in limited.log_path.read_text().splitlines()]
    codes = {e.get("error") for e in entries if e["message"] == "request"}
    assert "body_timeout" in codes


# --- several workers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(
    artifact: tuple[Path, LogisticRegression], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with running_server(artifact[0], tmp_path_factory.mktemp("logs") / "workers.log", workers=2, env=LIMITS) as server:
        yield server


def test_multi_worker_server_serves_the_same_predictions(two_workers: Server, model) -> None:
    records = raw_records(4, seed=30)
    replies = [invoke(two_workers, to_csv(records), "text/csv") for _ in range(6)]
    for reply in replies:
        assert reply.status == 200
        np.testing.assert_allclose(reply.json()["predictions"], expected(model, records), rtol=0, atol=1e-9)


def test_multi_worker_server_applies_the_header_timeout(two_workers: Server) -> None:
    # Spawned workers rebuild the server from the environment: the limits must reach them too.
    with connection(two_workers) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\n")
        response, elapsed = until_closed(sock, HEADER_TIMEOUT + SLACK)
    assert status_of(response) == 408, response
    assert elapsed < HEADER_TIMEOUT + SLACK


# --- start-up failures --------------------------------------------------------------------------------


def _metadata_change(**changes: object) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / "model-metadata.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | changes))

    return apply


def _corrupt_model(directory: Path) -> None:
    data = (directory / "model.joblib").read_bytes()
    (directory / "model.joblib").write_bytes(data[: len(data) // 2])


def _garbage_model(directory: Path) -> None:
    (directory / "model.joblib").write_bytes(b"this is not a pickle")


BROKEN = {
    "missing model dir": (lambda d: None, "does-not-exist", "model directory does not exist"),
    "corrupt model.joblib": (_corrupt_model, "model.joblib", "cannot load model"),
    "garbage model.joblib": (_garbage_model, "model.joblib", "cannot load model"),
    "missing model.joblib": (lambda d: (d / "model.joblib").unlink(), "model.joblib", "model file is missing"),
    "missing metadata": (lambda d: (d / "model-metadata.json").unlink(), "model-metadata.json", "missing"),
    "metadata not json": (
        lambda d: (d / "model-metadata.json").write_text("{nope"), "model-metadata.json", "cannot read metadata",
    ),
    "feature_names differ": (
        _metadata_change(feature_names=list(reversed(SPEC.feature_names))), "model-metadata.json", "differ from spec",
    ),
    "unknown spec": (_metadata_change(feature_spec="no-such-spec"), "model-metadata.json", "unknown feature spec"),
    "spec version differs": (
        _metadata_change(feature_spec_version=SPEC.version + 1), "model-metadata.json", "this image has version",
    ),
    "other framework": (_metadata_change(framework="xgboost"), "model-metadata.json", "serves 'scikit-learn'"),
    "other sklearn version": (
        _metadata_change(framework_version="0.24.2"), "model-metadata.json", "trained with scikit-learn 0.24.2",
    ),
}  # fmt: skip


def main_in_process(
    argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """``inference_server.__main__.main`` run in this process, as ``python -m inference_server`` runs it: its exit
    status and what it wrote to stderr. Start-up failures end before uvicorn starts, so no server runs; the logging
    setup it may have installed is put back. (``test_..._the_process_exits_with_status_2`` keeps one real process.)"""
    from containers.inference.inference_server.__main__ import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    try:
        status = main(argv)
    finally:
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            lg.handlers[:], lg.propagate = handlers, propagate
            lg.setLevel(level)
    return status, capsys.readouterr().err


def broken_artifact(case: tuple, artifact: Any, tmp_path: Path) -> tuple[Path, str, str]:
    """A copy of the artifact broken as ``case`` says: the model directory to start with, the path the error must
    name, and the problem it must state."""
    breaks, file_named, problem = case
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name in ("model.joblib", "model-metadata.json"):
        (model_dir / name).write_bytes((artifact[0] / name).read_bytes())
    breaks(model_dir)
    target = tmp_path / "does-not-exist" if file_named == "does-not-exist" else model_dir
    return target, str(target / file_named if file_named != "does-not-exist" else target), problem


@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_bad_artifact_stops_the_server_at_start_with_a_clear_error(
    case: tuple, artifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # fmt: skip
    target, named, problem = broken_artifact(case, artifact, tmp_path)
    status, message = main_in_process(server_command(target, free_port())[3:], {}, monkeypatch, capsys)
    assert status == 2
    assert "cannot start" in message
    assert named in message
    assert problem in message


def test_a_bad_artifact_stops_the_server_process_with_status_2(artifact, tmp_path: Path) -> None:
    """The same start-up check through a real ``python -m inference_server`` process, as SageMaker starts it."""
    target, named, problem = broken_artifact(BROKEN["corrupt model.joblib"], artifact, tmp_path)
    process = subprocess.Popen(
        server_command(target, free_port()),
        env=server_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=START_TIMEOUT)
    finally:
        stop(process)
    assert process.returncode == 2
    message = stderr.decode()
    assert "cannot start" in message and named in message and problem in message
