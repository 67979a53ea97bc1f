"""What goes into a container image's build: the files its ``.dockerignore`` admits, and their content hash.

Every image builds with the repository root as context (the inference image needs ``mlops/features``, the
code training uses) from ``containers/<name>/Dockerfile``. BuildKit reads ``containers/<name>/Dockerfile.dockerignore``
for that Dockerfile, so the files sent to the builder are exactly those the ignore file admits. The image's
tag is a hash of those files (plus the platforms built): the same sources give the same tag, so the tag says
which code an image holds, and any change to what is copied makes a new tag and a new build.

Ignore-file semantics are BuildKit's (moby's ``ignorefile`` and ``patternmatcher``, as Docker's ``.dockerignore``
reference documents them): one pattern per line, ``#`` comments, paths cleaned and relative to the context root,
``*`` and ``?`` within a path segment, ``**`` across segments, ``!`` re-includes, the last matching line wins, and
a pattern that matches a directory matches everything below it. ``tests/unit/test_inference_image.py`` checks
the matcher on the documentation's own examples. (``pathspec``'s gitignore rules differ: a slash-less pattern
matches at any depth there; docker-py's matcher checks one parent level only, so ``**/__pycache__`` misses.)
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CONTAINERS_DIR = "containers"


# moby/patternmatcher escapes these (regexp specials that mean nothing to Go's filepath.Match) and passes the
# other characters through.
_REGEX_SPECIALS = frozenset(".+()|{}$")


@dataclass(frozen=True)
class Rule:
    """One dockerignore line: an exclusion, or a re-inclusion (``!``), and how it matches a path."""

    pattern: str
    reinclude: bool
    regex: re.Pattern[str] | None  # None: the suffix shortcut of a pattern that starts with **
    suffix: str = ""

    def matches(self, path: str) -> bool:
        if self.regex is not None:
            return self.regex.fullmatch(path) is not None
        # moby's shortcut for "**<literal>": any path ending so ("**/foo" also matches "foo" itself)
        return path.endswith(self.suffix) or (self.suffix.startswith("/") and path == self.suffix[1:])


def compile_rule(line: str) -> Rule | None:
    """A rule from one line of a dockerignore file (``None`` for comments and blank lines).

    The line is read like moby's ignorefile.ReadAll (``#`` in column 1 is a comment; whitespace trimmed;
    the path cleaned and made relative) and compiled like patternmatcher's ``Pattern.compile``.
    """
    if line.startswith("#"):
        return None
    pattern = line.strip()
    reinclude = pattern.startswith("!")
    if reinclude:
        pattern = pattern[1:].strip()
        if not pattern:
            raise ValueError('illegal exclusion pattern: "!"')
    if not pattern:
        return None
    pattern = posixpath.normpath(pattern)
    if len(pattern) > 1 and pattern.startswith("/"):
        pattern = pattern[1:]
    if pattern == ".":
        return None  # the docs: "for historical reasons, the pattern . is ignored"
    if pattern.startswith("**") and not any(char in pattern[2:] for char in "*?[]\\"):
        return Rule(pattern, reinclude, None, pattern[2:])  # moby matches these by suffix, not by regex
    regex, position = "^", 0
    while position < len(pattern):
        char = pattern[position]
        position += 1
        if char == "*" and pattern[position : position + 1] == "*":
            position += 1
            if pattern[position : position + 1] == "/":
                position += 1  # "**/" is "**"
            regex += ".*" if position == len(pattern) else "(.*/)?"
        elif char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char in _REGEX_SPECIALS:
            regex += "\\" + char
        elif char == "\\":
            regex += "\\" + pattern[position] if position < len(pattern) else "\\\\"
            position += 1
        else:
            regex += char  # "[" and "]" pass through as a character class, like Go's filepath.Match
    return Rule(pattern, reinclude, re.compile(regex + "$"))


class DockerIgnore:
    """A dockerignore file's rules, matched the way BuildKit matches them (see the module docstring)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.rules = [rule for rule in map(compile_rule, lines) if rule is not None]

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        return cls(path.read_text(encoding="utf-8-sig").splitlines())

    def excludes(self, path: str) -> bool:
        """Whether ``path`` (relative, slash-separated) stays out of the context: the last rule that matches
        it, or one of its parent directories, decides."""
        parts = path.split("/")
        candidates = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
        excluded = False
        for rule in self.rules:
            if any(rule.matches(candidate) for candidate in candidates):
                excluded = not rule.reinclude
        return excluded

    def may_reinclude_below(self, directory: str) -> bool:
        """Whether a ``!`` rule could match something inside ``directory`` (walking must then go in)."""
        depth = len(directory.split("/"))
        for rule in self.rules:
            if not rule.reinclude:
                continue
            if "**" in rule.pattern:
                return True  # may reach any depth
            components = rule.pattern.split("/")
            if len(components) <= depth:
                continue  # matches this directory or one above it, never something inside it
            prefix = compile_rule("/".join(components[:depth]))
            if prefix is not None and prefix.matches(directory):
                return True
        return False


def context_files(root: Path, ignore: DockerIgnore) -> set[str]:
    """The files (relative, slash-separated) a build of ``root`` sends after ``ignore``'s rules."""
    sent: set[str] = set()
    for directory, subdirectories, files in os.walk(root):
        relative = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        # Skip excluded directories nothing can re-include (how BuildKit avoids reading .venv or .git).
        subdirectories[:] = [
            d for d in subdirectories if not ignore.excludes(prefix + d) or ignore.may_reinclude_below(prefix + d)
        ]
        sent.update(prefix + name for name in files if not ignore.excludes(prefix + name))
    return sent


@dataclass(frozen=True)
class BuildContext:
    """One image's build inputs, relative to the repository root."""

    name: str
    dockerfile: str
    """``containers/<name>/Dockerfile``."""
    files: tuple[str, ...]
    """Every file the ignore file admits (sorted), the Dockerfile and the ignore file themselves included."""
    content_hash: str
    """sha256 over the files' paths and bytes (hex)."""

    def tag(self, platforms: Sequence[str]) -> str:
        """The image tag: 16 hex digits of the content hash and the platforms built (a different platform
        set is a different image, so it must not reuse a tag that ECR keeps immutable)."""
        digest = hashlib.sha256(self.content_hash.encode())
        for platform in sorted(platforms):
            digest.update(b"\0" + platform.encode())
        return digest.hexdigest()[:16]


class BuildContextError(ValueError):
    """An image's directory lacks what a build needs."""


@lru_cache(maxsize=8)
def build_context(name: str, root: Path = REPO_ROOT) -> BuildContext:
    """The build context of ``containers/<name>`` with the repository root as context.

    Raises :class:`BuildContextError` when the Dockerfile or its ignore file is missing: without the ignore
    file the builder would receive the whole repository (virtualenvs, test data), and the content hash
    would change with every unrelated edit.
    """
    dockerfile = f"{CONTAINERS_DIR}/{name}/Dockerfile"
    ignore_file = f"{dockerfile}.dockerignore"
    for required in (dockerfile, ignore_file):
        if not (root / required).is_file():
            raise BuildContextError(f"image '{name}': {required} is missing")
    ignore = DockerIgnore.read(root / ignore_file)
    files = sorted({*context_files(root, ignore), dockerfile, ignore_file})
    digest = hashlib.sha256()
    for relative in files:
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256((root / relative).read_bytes()).digest())
    return BuildContext(name=name, dockerfile=dockerfile, files=tuple(files), content_hash=digest.hexdigest())
