"""The locks, the packaging metadata and the Makefile's promises.

`make lock` resolves pyproject.toml once with uv, for every platform and every supported Python, into three hashed
locks: ``constraints.txt`` (everything; `make setup` installs it with ``--require-hashes``), ``requirements.txt``
(the program's dependencies: what Pulumi's pip toolchain installs into ``.venv`` at ``pulumi install``) and
``policies/requirements.txt`` (the policy pack's ``venv``). These tests keep the three complete, hashed and in
agreement with pyproject.toml, and hold the Makefile to what it says: supported Pythons, ``help``, ``clean``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.licenses import canonicalize_license_expression
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FULL_LOCK = ROOT / "constraints.txt"
RUNTIME_LOCK = ROOT / "requirements.txt"
PACK_LOCK = ROOT / "policies" / "requirements.txt"
LOCKS = [FULL_LOCK, RUNTIME_LOCK, PACK_LOCK]
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@dataclass(frozen=True)
class Pin:
    version: str
    marker: str | None
    hashes: frozenset[str]


def read_lock(path: Path) -> dict[NormalizedName, Pin]:
    """``name -> Pin`` of a hashed requirements file (``name==version ; marker --hash=...`` per entry)."""
    pins: dict[NormalizedName, Pin] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *hashes = re.split(r"\s+--hash=", line)
        requirement = Requirement(spec)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{path.name}: {spec!r} is not pinned"
        name = canonicalize_name(requirement.name)
        # uv writes one entry per package unless the resolution forks by Python version or platform
        assert name not in pins, f"{path.name}: {name} is locked twice (a forked resolution): extend read_lock"
        pins[name] = Pin(
            specifiers[0].version, str(requirement.marker) if requirement.marker else None, frozenset(hashes)
        )
    return pins


def requirements(specs: Iterable[str]) -> list[Requirement]:
    return [Requirement(spec) for spec in specs]


RUNTIME_ROOTS = requirements(PYPROJECT["project"]["dependencies"])
DEV_ROOTS = requirements(PYPROJECT["project"]["optional-dependencies"]["dev"])
BUILD_ROOTS = requirements(PYPROJECT["build-system"]["requires"])
PACK_ROOTS = requirements(PYPROJECT["dependency-groups"]["policy-pack"])
ROOTS = {FULL_LOCK: RUNTIME_ROOTS + DEV_ROOTS + BUILD_ROOTS, RUNTIME_LOCK: RUNTIME_ROOTS, PACK_LOCK: PACK_ROOTS}


# --- the locks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_locked_package_is_pinned_with_its_hashes(lock: Path) -> None:
    pins = read_lock(lock)
    assert pins
    unhashed = sorted(name for name, pin in pins.items() if not pin.hashes)
    assert not unhashed, f"{lock.name}: no --hash for {unhashed}: run make lock"
    assert all(h.startswith("sha256:") for pin in pins.values() for h in pin.hashes)


def test_pyproject_pins_are_the_locked_versions() -> None:
    full, runtime = read_lock(FULL_LOCK), read_lock(RUNTIME_LOCK)
    for lock, roots in ((full, RUNTIME_ROOTS + DEV_ROOTS), (runtime, RUNTIME_ROOTS)):
        for root in roots:
            name = canonicalize_name(root.name)
            assert name in lock, f"{root} is not locked: run make lock"
            assert root.specifier.contains(lock[name].version, prereleases=True), (
                f"pyproject.toml asks {root}, the lock has {lock[name].version}: run make lock"
            )


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, PACK_LOCK], ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_and_policy_pack_locks_are_cut_from_the_full_lock(lock: Path) -> None:
    # Same version, same marker, same hashes: Pulumi's venv, the policy pack's and make setup's agree.
    full = read_lock(FULL_LOCK)
    differ = {name: pin.version for name, pin in read_lock(lock).items() if full.get(name) != pin}
    assert not differ, f"{lock.name} disagrees with constraints.txt on {differ}: run make lock"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_lock_holds_every_dependency_it_needs_on_this_python(lock: Path) -> None:
    # pip installs a hashed file only if it names every package it needs: walk the installed metadata from the
    # lock's roots, with the extras each one asks for, and require every dependency pinned at a fitting version.
    pins = read_lock(lock)
    missing: dict[str, list[str]] = {}
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    queue = [(root, "root") for root in ROOTS[lock]]
    while queue:
        requirement, wanted_by = queue.pop()
        name = canonicalize_name(requirement.name)
        if name not in pins:
            missing.setdefault(wanted_by, []).append(str(requirement))
            continue
        pinned = pins[name].version
        assert requirement.specifier.contains(pinned, prereleases=True), f"{wanted_by} needs {requirement}: {pinned}"
        extras = frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        installed = metadata.distribution(name).version
        assert Version(installed) == Version(pinned), (
            f"{name} {installed} is installed, the lock pins {pinned}: make setup"
        )
        for line in metadata.distribution(name).requires or []:
            dependency = Requirement(line)
            environments = [{"extra": extra} for extra in ("", *extras)]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                queue.append((dependency, f"{name}{sorted(extras) if extras else ''}"))
    assert not missing, f"{lock.name} lacks dependencies (wanted by: requirements): {missing}: run make lock"


def test_locked_platform_markers_hold_here_for_every_installed_package() -> None:
    # A marker that is false on Linux only leaves out Windows/emscripten-only packages (colorama, pywin32, ...).
    for name, pin in read_lock(FULL_LOCK).items():
        if pin.marker and not Marker(pin.marker).evaluate():
            assert "win32" in pin.marker or "emscripten" in pin.marker, f"{name} is left out here by {pin.marker}"


def third_party_imports(paths: Iterable[Path]) -> dict[str, str]:
    """Top-level modules imported by ``paths`` that are not the repository's own, with one importing file each."""
    first_party = {p.name for p in ROOT.iterdir() if p.is_dir()} | {p.stem for p in ROOT.glob("*.py")}
    first_party |= {p.name for p in (ROOT / "lambdas").iterdir()} | {p.stem for p in (ROOT / "policies").glob("*.py")}
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names}:
                if top not in sys.stdlib_module_names and top not in first_party:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def python_files(*parts: str, exclude: str | None = None) -> list[Path]:
    files: list[Path] = []
    for part in parts:
        path = ROOT / part
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return [f for f in files if exclude is None or not f.is_relative_to(ROOT / exclude)]


@pytest.mark.parametrize(
    ("lock", "code"),
    [
        # What `pulumi up` runs (pipelines/steps run inside SageMaker's own image, not here).
        (
            RUNTIME_LOCK,
            python_files("__main__.py", "infra", "pipelines", "mlops", "lambdas", exclude="pipelines/steps"),
        ),
        (PACK_LOCK, python_files("policies")),
        (FULL_LOCK, python_files("verify", "tools", "tests")),
    ],
    ids=["program", "policy-pack", "tools-and-tests"],
)
def test_every_imported_package_comes_from_the_lock(lock: Path, code: list[Path]) -> None:
    pins = read_lock(lock)
    providers = metadata.packages_distributions()
    unlocked = {
        module: where
        for module, where in third_party_imports(code).items()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & pins.keys()
    }
    assert not unlocked, f"imported but not in {lock.name} (module: first importer): {unlocked}"


def test_benchmark_pins_are_locked_versions() -> None:
    # make bench installs nothing: make setup already installed these (moto[server] and mlflow bring them).
    full = read_lock(FULL_LOCK)
    for line in (ROOT / "benchmarks" / "requirements.txt").read_text().splitlines():
        if line.split("#", 1)[0].strip():
            requirement = Requirement(line)
            pin = full.get(canonicalize_name(requirement.name))
            assert pin and requirement.specifier.contains(pin.version), f"{requirement} is not in constraints.txt"


# --- Pulumi's install path --------------------------------------------------------------------------------


def test_pulumi_creates_the_makefiles_venv_from_the_runtime_lock() -> None:
    # Pulumi's pip toolchain: `python -m venv <virtualenv>`, then `pip install -r requirements.txt` beside
    # Pulumi.yaml; a file with hashes turns on pip's hash-checking mode by itself.
    options = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]
    makefile_venv = re.search(r"^VENV \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert options == {"toolchain": "pip", "virtualenv": ".venv"}
    assert makefile_venv and makefile_venv[1] == options["virtualenv"]
    assert RUNTIME_LOCK.parent == ROOT


def test_pulumi_creates_the_policy_packs_venv_from_its_lock() -> None:
    options = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())["runtime"]["options"]
    assert options == {"toolchain": "pip", "virtualenv": "venv"}
    assert PACK_LOCK.parent == ROOT / "policies"
    assert {canonicalize_name(r.name) for r in PACK_ROOTS} <= read_lock(PACK_LOCK).keys()


# --- packaging metadata -----------------------------------------------------------------------------------


def test_license_is_an_spdx_expression_with_its_files() -> None:
    project = PYPROJECT["project"]
    assert isinstance(project["license"], str), "PEP 639: license is an SPDX expression, not a table"
    assert canonicalize_license_expression(project["license"]) == project["license"]
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), f"license-files pattern {pattern!r} matches no file"


def test_build_backend_is_bounded_and_locked() -> None:
    [backend] = BUILD_ROOTS
    assert backend.name == "setuptools"
    assert {s.operator for s in backend.specifier} == {">=", "<"}
    assert Version(next(s.version for s in backend.specifier if s.operator == ">=")) >= Version("77")  # PEP 639
    assert backend.specifier.contains(read_lock(FULL_LOCK)["setuptools"].version)


def test_project_metadata_builds_with_the_locked_backend_without_warnings(tmp_path: Path) -> None:
    locked = read_lock(FULL_LOCK)["setuptools"].version
    assert metadata.version("setuptools") == locked, "the venv's setuptools is not the locked one: make setup"
    build = (
        "import sys; from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    # -W error: a deprecated field (license table, unmatched license-files) is a SetuptoolsDeprecationWarning.
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", build, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dist_info = tmp_path / result.stdout.strip().splitlines()[-1]
    fields = [line.split(": ", 1) for line in (dist_info / "METADATA").read_text().splitlines() if ": " in line]
    assert ["License-Expression", PYPROJECT["project"]["license"]] in fields
    assert not [f for f in fields if f[0] == "License"], "the deprecated License field is still written"
    requires_python = next(value for key, value in fields if key == "Requires-Python")
    assert (
        Requirement(f"x{requires_python}").specifier
        == Requirement(f"x{PYPROJECT['project']['requires-python']}").specifier
    )


# --- the Makefile -----------------------------------------------------------------------------------------


def make(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("MAKEFLAGS", None)
    return subprocess.run([MAKE, "-s", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False)


def fake_python(tmp_path: Path, version: str) -> Path:
    """An interpreter that only reports ``version`` (all the Makefile asks before creating a venv)."""
    path = tmp_path / f"python{version}"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


@needs_make
@pytest.mark.parametrize("version", ["3.10.13", "3.11.4", "3.14.0"])
def test_make_setup_refuses_an_unsupported_python_before_creating_the_venv(tmp_path: Path, version: str) -> None:
    python, venv = fake_python(tmp_path, version), tmp_path / "venv"
    result = make("setup", f"PYTHON={python}", f"VENV={venv}")
    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"make: {python} is Python {version}, but this project needs Python ")
    assert PYPROJECT["project"]["requires-python"] in first  # the bounds come from pyproject.toml
    assert "PYTHON=" in first  # and it says what to do
    assert not venv.exists()


@needs_make
def test_make_accepts_a_supported_python_silently(tmp_path: Path) -> None:
    result = make("python-check", f"PYTHON={sys.executable}", f"VENV={tmp_path / 'none'}")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@needs_make
def test_make_help_lists_every_target() -> None:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    phony = {name for line in re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE) for name in line.split()}
    listed = {line.split()[0] for line in make("help").stdout.splitlines() if line.strip()}
    assert phony and phony <= listed, f"make help misses {sorted(phony - listed)}"


@needs_make
def test_make_clean_removes_build_output_but_never_a_venv(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    output = [
        "build/lambdas/a.zip",
        "mlops_platform.egg-info/PKG-INFO",
        ".pytest_cache/x",
        ".ruff_cache/x",
        ".hypothesis/examples/x",
        "infra/__pycache__/a.pyc",
    ]
    venvs = [
        ".venv/bin/python",
        ".venv/lib/__pycache__/a.pyc",
        ".venv-localstack/bin/python",
        "policies/venv/bin/python",
    ]
    for relative in output + venvs:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")

    assert make("clean", cwd=tmp_path).returncode == 0
    assert [r for r in output if (tmp_path / r).exists()] == []
    assert [r for r in venvs if not (tmp_path / r).exists()] == []

    assert make("distclean", cwd=tmp_path).returncode == 0
    assert [r for r in venvs if (tmp_path / r).exists()] == []
