"""The emulator harness: servers listen on loopback only, keep their state to themselves, and stopping them ends
their processes."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from tools.emulators import (
    Emulator,
    EmulatorStartError,
    Endpoints,
    free_port,
    localstack_environment,
    localstack_python,
    start_moto,
    stop,
    wait_ready,
)

pytestmark = pytest.mark.integration

LISTEN = "0A"  # TCP state code of a listening socket in /proc/net/tcp


def listening_addresses(port: int) -> set[str]:
    """IPv4 and IPv6 addresses (hex, as the kernel writes them) with a listening socket on ``port``."""
    found: set[str] = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == LISTEN:
                found.add(address)
    return found


def port_of(url: str) -> int:
    port = urllib.parse.urlsplit(url).port
    assert port is not None
    return port


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net/tcp")
@pytest.mark.parametrize("server", ["localstack", "moto"])
def test_server_listens_on_loopback_only(emulators: Endpoints, server: str) -> None:
    addresses = listening_addresses(port_of(getattr(emulators, server)))
    assert addresses == {"0100007F"}  # 127.0.0.1, little-endian hex; no 0.0.0.0, no IPv6 wildcard


def test_stop_ends_the_server_and_frees_its_port(tmp_path: Path) -> None:
    emulator = start_moto(tmp_path)
    port = port_of(emulator.url)
    stop(emulator)
    assert emulator.process.poll() is not None
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_localstack_keeps_its_files_in_its_own_folder(emulators: Endpoints, tmp_path: Path) -> None:
    # Inside a container LocalStack defaults to /tmp/localstack, shared by every instance on the machine and
    # emptied by each as it starts and stops: the drill's instance would delete the test session's metrics.
    del emulators  # only for its check that LocalStack's environment exists
    probe = "from localstack import config; print(config.dirs.tmp); print(config.dirs.data)"
    finished = subprocess.run(
        [str(localstack_python()), "-c", probe],
        env=localstack_environment(tmp_path, free_port()),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    folders = [Path(line) for line in finished.stdout.splitlines()]
    assert len(folders) == 2 and all(folder.is_relative_to(tmp_path) for folder in folders), folders


def test_server_that_exits_while_starting_reports_its_log(tmp_path: Path) -> None:
    log = tmp_path / "broken.log"
    log.write_text("OSError: [Errno 98] Address already in use\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    emulator = Emulator(name="broken", url="http://127.0.0.1:9", process=process, workdir=tmp_path, log_path=log)
    with pytest.raises(EmulatorStartError, match=r"^broken exited with 3 while starting:\nOSError: \[Errno 98\]"):
        wait_ready(emulator, "/", timeout=5)
