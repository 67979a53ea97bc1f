"""Start and stop the local AWS emulators: LocalStack and moto's server, on 127.0.0.1 only.

LocalStack (alarms whose actions fire to SNS, SNS → SQS, EventBridge → SQS, KMS, Secrets
Manager) runs from its own Python 3.13 virtual environment (``.venv-localstack``; it cannot share the
project's 3.11 one), started the way that needs neither Docker nor an account token::

    GATEWAY_LISTEN=127.0.0.1:<port> GATEWAY_SERVER=hypercorn DNS_ADDRESS=0 DISABLE_EVENTS=1 \\
    SKIP_SSL_CERT_DOWNLOAD=1 FILESYSTEM_ROOT=<tmp> CONFIG_DIR=<tmp> OVERRIDE_IN_DOCKER=0 \\
    python -m localstack.runtime.main

(hypercorn is what makes it honour the loopback address; ``DNS_ADDRESS=0`` keeps it off port 53;
``OVERRIDE_IN_DOCKER=0`` keeps its files under ``FILESYSTEM_ROOT`` when this machine is itself a container). moto's
server (SageMaker, Glue, S3 for the lake, DynamoDB: LocalStack's downloads a JDK) runs from the project's venv: ``moto_server -H 127.0.0.1 -p <port>``.

Each server gets a free port and a private temporary folder (its log and LocalStack's state), is
waited for until it answers HTTP, and is stopped with SIGTERM, then SIGKILL after a timeout. Both
are started in their own process group, so stopping one also stops the workers it spawned.

Command line (``python -m tools.emulators``):

- ``setup``: create ``.venv-localstack`` from ``tests/integration/localstack-requirements.txt`` if missing;
- ``run``: start both, print their endpoint URLs and the environment to export, stop on Ctrl-C.

Errors: :class:`EmulatorUnavailableError` when LocalStack cannot be installed here (no Python 3.13),
:class:`EmulatorStartError` when a server exits or does not answer in time (its log tail is in the message).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCALSTACK_VENV = REPO_ROOT / ".venv-localstack"
LOCALSTACK_REQUIREMENTS = REPO_ROOT / "tests" / "integration" / "localstack-requirements.txt"
LOCALSTACK_PYTHON_VERSION = "3.13"
HOST = "127.0.0.1"

LOCALSTACK_READY_PATH = "/_localstack/health"
MOTO_READY_PATH = "/moto-api/"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


class EmulatorError(RuntimeError):
    """An emulator could not be prepared, started or stopped."""


class EmulatorUnavailableError(EmulatorError):
    """LocalStack cannot run on this machine (no Python 3.13 to create its environment)."""


class EmulatorStartError(EmulatorError):
    """A server exited or did not answer before the timeout; the message holds its log tail."""


@dataclass
class Emulator:
    """A running server: its name, its endpoint URL, its process and the folder holding its log and state."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    _log: IO[bytes] | None = field(repr=False, default=None)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log (stdout and stderr)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Endpoints:
    """Endpoint URLs of the running emulators."""

    localstack: str
    moto: str

    def environment(self) -> dict[str, str]:
        """``AWS_ENDPOINT_URL_<SERVICE>`` variables routing boto3 clients to the right emulator.

        botocore reads these per-service variables (and they win over the global ``AWS_ENDPOINT_URL``),
        so code that creates its own clients (the Lambda handlers) reaches the emulators unchanged.
        """
        return {
            **{f"AWS_ENDPOINT_URL_{service}": self.localstack for service in LOCALSTACK_SERVICES},
            **{f"AWS_ENDPOINT_URL_{service}": self.moto for service in MOTO_SERVICES},
        }


# Which emulator serves which service (botocore's environment-variable service ids).
LOCALSTACK_SERVICES: tuple[str, ...] = (
    "SNS",
    "SQS",
    "CLOUDWATCH",
    "EVENTBRIDGE",
    "KMS",
    "SECRETS_MANAGER",
    "STS",
    "LOGS",
)
# DynamoDB goes to moto: LocalStack's DynamoDB is DynamoDB Local, which needs a JDK and a jar it downloads
# on first use (from GitHub and S3), and this machine reaches package registries only.
MOTO_SERVICES: tuple[str, ...] = ("SAGEMAKER", "S3", "GLUE", "DYNAMODB")


# ---------------------------------------------------------------------------------------------
# LocalStack's environment


def find_python313() -> Path | None:
    """A Python 3.13 interpreter: ``$LOCALSTACK_PYTHON``, pyenv's newest 3.13.x, or ``python3.13`` on PATH."""
    configured = os.environ.get("LOCALSTACK_PYTHON")
    if configured:
        return Path(configured)
    roots = [Path(os.environ["PYENV_ROOT"])] if os.environ.get("PYENV_ROOT") else []
    roots.append(Path.home() / ".pyenv")
    for root in roots:
        versions = sorted((root / "versions").glob(f"{LOCALSTACK_PYTHON_VERSION}.*"), key=_version_key, reverse=True)
        for version in versions:
            candidate = version / "bin" / f"python{LOCALSTACK_PYTHON_VERSION}"
            if candidate.is_file():
                return candidate
    found = shutil.which(f"python{LOCALSTACK_PYTHON_VERSION}")
    return Path(found) if found else None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in path.name.split("."))


def localstack_python(venv: Path = LOCALSTACK_VENV) -> Path:
    """The interpreter of LocalStack's environment."""
    return venv / "bin" / "python"


def localstack_installed(venv: Path = LOCALSTACK_VENV) -> bool:
    """Whether ``venv`` holds a finished LocalStack install (its stamp matches the requirements file)."""
    stamp = venv / ".installed"
    return (
        localstack_python(venv).is_file()
        and stamp.is_file()
        and stamp.read_text(encoding="utf-8") == LOCALSTACK_REQUIREMENTS.read_text(encoding="utf-8")
    )


def ensure_localstack_venv(venv: Path = LOCALSTACK_VENV, *, quiet: bool = True) -> Path:
    """Create ``venv`` with Python 3.13 and the pinned LocalStack requirements, unless already done.

    The install is stamped with the requirements it used, so changing the pins reinstalls. Returns the
    environment's interpreter. Raises :class:`EmulatorUnavailableError` when no Python 3.13 exists and
    :class:`EmulatorError` when pip fails (its output in the message).
    """
    if localstack_installed(venv):
        return localstack_python(venv)
    python = find_python313()
    if python is None:
        raise EmulatorUnavailableError(
            f"LocalStack needs Python {LOCALSTACK_PYTHON_VERSION} (pyenv install {LOCALSTACK_PYTHON_VERSION}, "
            "or set LOCALSTACK_PYTHON); none was found"
        )
    if not localstack_python(venv).is_file():
        _checked([str(python), "-m", "venv", str(venv)], "creating the LocalStack venv")
    pip = [str(localstack_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("--quiet")
    _checked([*pip, "-r", str(LOCALSTACK_REQUIREMENTS)], "installing LocalStack")
    (venv / ".installed").write_text(LOCALSTACK_REQUIREMENTS.read_text(encoding="utf-8"), encoding="utf-8")
    return localstack_python(venv)


def _checked(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (fixed commands)
    if result.returncode != 0:
        raise EmulatorError(
            f"{what} failed ({result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}"
        )


# ---------------------------------------------------------------------------------------------
# Starting, waiting, stopping


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _spawn(name: str, command: list[str], env: Mapping[str, str], workdir: Path, port: int) -> Emulator:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603 (fixed commands from this module)
        command,
        cwd=workdir,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: stop() ends the server's workers with it
    )
    return Emulator(
        name=name, url=f"http://{HOST}:{port}", process=process, workdir=workdir, log_path=log_path, _log=log
    )


def wait_ready(emulator: Emulator, path: str, timeout: float = START_TIMEOUT_SECONDS) -> float:
    """Poll ``GET <url><path>`` until the server answers (any HTTP status); return the seconds it took.

    Raises :class:`EmulatorStartError` if the process exits first or nothing answers within ``timeout``.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        code = emulator.process.poll()
        if code is not None:
            raise EmulatorStartError(f"{emulator.name} exited with {code} while starting:\n{emulator.log_tail()}")
        try:
            with urllib.request.urlopen(emulator.url + path, timeout=2) as response:  # noqa: S310 (loopback http)
                response.read()
            return time.monotonic() - started
        except urllib.error.HTTPError:
            return time.monotonic() - started  # it answered: up
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise EmulatorStartError(
                f"{emulator.name} did not answer on {emulator.url}{path} within {timeout:.0f}s:\n{emulator.log_tail()}"
            )
        time.sleep(0.1)


def stop(emulator: Emulator, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
    """SIGTERM the server's process group, SIGKILL it after ``timeout`` seconds; return the exit code."""
    process = emulator.process
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    # Workers left in the group after the leader exited (SIGTERM handled by the leader only).
    _signal_group(process.pid, signal.SIGKILL)
    if emulator._log is not None:
        emulator._log.close()
    return int(process.returncode)


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a server started with ``start_new_session=True`` and its process group (its workers too); SIGKILL
    the group if it has not exited after ``timeout`` seconds. The inference servers the loop harness, the server
    tests and the benchmark start all stop this way."""
    if process.poll() is not None:
        return
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _base_environment() -> dict[str, str]:
    """The parent's environment without AWS endpoint overrides (a server must not call itself or the other)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}


def localstack_environment(state: Path, port: int) -> dict[str, str]:
    """LocalStack's environment: loopback ``port`` only, every file it writes under ``state``, nothing sent out."""
    env = _base_environment()
    env.update(
        {
            "GATEWAY_LISTEN": f"{HOST}:{port}",
            "GATEWAY_SERVER": "hypercorn",  # the default server binds 0.0.0.0 whatever GATEWAY_LISTEN says
            "DNS_ADDRESS": "0",  # no DNS server on port 53
            "DISABLE_EVENTS": "1",  # no analytics calls home
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "FILESYSTEM_ROOT": str(state / "filesystem"),
            "CONFIG_DIR": str(state / "config"),
            # Host mode even inside a container (CI runners, dev containers): LocalStack otherwise detects the
            # container, ignores FILESYSTEM_ROOT and keeps its state in /tmp/localstack, shared by every instance
            # on the machine and emptied by each one as it starts and stops (a second instance, such as the
            # drill's beside the test session's, deletes the first one's CloudWatch metrics database).
            "OVERRIDE_IN_DOCKER": "0",
            "LOCALSTACK_HOST": f"{HOST}:{port}",  # URLs it returns point at this port
            "SQS_ENDPOINT_STRATEGY": "path",  # queue URLs on 127.0.0.1, not a *.localstack.cloud name (DNS)
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_localstack(
    workdir: Path,
    *,
    venv: Path = LOCALSTACK_VENV,
    timeout: float = START_TIMEOUT_SECONDS,
    port: int | None = None,
) -> Emulator:
    """Start LocalStack on loopback (``port``, default a free one) with its state under ``workdir``; wait until
    it answers."""
    python = localstack_python(venv)
    if not python.is_file():
        raise EmulatorError(f"no LocalStack environment at {venv}: run `python -m tools.emulators setup`")
    port = port or free_port()
    state = workdir / "localstack"
    (state / "filesystem").mkdir(parents=True, exist_ok=True)
    (state / "config").mkdir(parents=True, exist_ok=True)
    env = localstack_environment(state, port)
    emulator = _spawn("localstack", [str(python), "-m", "localstack.runtime.main"], env, workdir, port)
    try:
        wait_ready(emulator, LOCALSTACK_READY_PATH, timeout)
    except BaseException:
        stop(emulator)
        raise
    return emulator


def moto_server_command(port: int) -> list[str]:
    """``moto_server -H 127.0.0.1 -p <port>`` from the running interpreter's environment."""
    script = Path(sys.executable).parent / "moto_server"
    if script.is_file():
        return [str(script), "-H", HOST, "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]


def start_moto(workdir: Path, *, timeout: float = START_TIMEOUT_SECONDS, port: int | None = None) -> Emulator:
    """Start moto's server on loopback (``port``, default a free one); wait until it answers."""
    port = port or free_port()
    env = _base_environment()
    env["PYTHONUNBUFFERED"] = "1"
    emulator = _spawn("moto", moto_server_command(port), env, workdir, port)
    try:
        wait_ready(emulator, MOTO_READY_PATH, timeout)
    except BaseException:
        stop(emulator)
        raise
    return emulator


@contextlib.contextmanager
def running_emulators(
    *,
    venv: Path = LOCALSTACK_VENV,
    keep_logs: Path | None = None,
    localstack_port: int | None = None,
    moto_port: int | None = None,
) -> Iterator[Endpoints]:
    """Start LocalStack and moto's server, yield their endpoints, always stop both (and remove their state).

    ``keep_logs``: a folder to copy the servers' logs to before their temporary folder goes. Ports default
    to free ones; the ``local`` stack expects 4566 and 5000 (``python -m tools.emulators run`` uses those).
    """
    workdir = Path(tempfile.mkdtemp(prefix="mlops-emulators-"))
    started: list[Emulator] = []
    try:
        started.append(start_moto(workdir, port=moto_port))
        started.append(start_localstack(workdir, venv=venv, port=localstack_port))
        yield Endpoints(localstack=started[1].url, moto=started[0].url)
    finally:
        for emulator in reversed(started):
            stop(emulator)
        if keep_logs is not None:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for emulator in started:
                with contextlib.suppress(OSError):
                    shutil.copy2(emulator.log_path, keep_logs / emulator.log_path.name)
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.emulators", description="Local AWS emulators on 127.0.0.1.")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup", help="create .venv-localstack (Python 3.13, pinned LocalStack) if missing")
    setup.add_argument(
        "--if-available",
        action="store_true",
        help="exit 0 with a notice when Python 3.13 is absent (the integration tier then skips itself)",
    )
    run = commands.add_parser("run", help="start LocalStack and moto server on loopback until Ctrl-C")
    run.add_argument("--localstack-port", type=int, default=4566, help="LocalStack's port (the local stack: 4566)")
    run.add_argument("--moto-port", type=int, default=5000, help="moto server's port (the local stack: 5000)")
    args = parser.parse_args(argv)
    try:
        started = time.monotonic()
        python = ensure_localstack_venv(quiet=False)
        print(f"LocalStack environment: {python} ({time.monotonic() - started:.1f}s)")
        if args.command == "setup":
            return 0
        with running_emulators(localstack_port=args.localstack_port, moto_port=args.moto_port) as endpoints:
            print(f"LocalStack: {endpoints.localstack}\nmoto:       {endpoints.moto}\n")
            for key, value in sorted(endpoints.environment().items()):
                print(f"export {key}={value}")
            print("\nCtrl-C stops both.", flush=True)
            signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops them like Ctrl-C
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    except EmulatorUnavailableError as exc:
        if args.command == "setup" and args.if_available:
            print(f"notice: LocalStack unavailable, the integration tier will be skipped: {exc}", file=sys.stderr)
            return 0
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
