"""Which image builds are already in ECR, read at ``pulumi up`` time.

ECR keeps the platform's tags immutable, and a tag is the content hash of what the image holds: pushing a tag
that exists fails (``ImageTagAlreadyExistsException``), even for the same bytes. That happens whenever the
sources return to a state already built (a revert, a rollback to the previous commit). So the program asks
ECR first: when the tag is there, it uses that image's digest and builds nothing; only a new tag is built
and pushed. :class:`EcrImages` asks ECR with a client built from the stack's AWS provider settings;
:class:`OfflineImages` answers without a network for the offline plan and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

_ABSENT = {"ImageNotFoundException", "RepositoryNotFoundException"}


class ImageSource(Protocol):
    """Says whether an image tag has been pushed."""

    def pushed_digest(self, repository: str, tag: str) -> str | None:
        """The digest (``sha256:...``) of ``repository:tag``, or ``None`` when ECR has no such tag."""
        ...


class ClientFactory(Protocol):
    def client(self, service: str) -> Any: ...


@dataclass
class EcrImages:
    """Reads ECR with the stack's AWS settings (the real ``pulumi up`` / ``preview`` path)."""

    clients: ClientFactory
    _cache: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def pushed_digest(self, repository: str, tag: str) -> str | None:
        key = (repository, tag)
        if key not in self._cache:
            self._cache[key] = self._describe(repository, tag)
        return self._cache[key]

    def _describe(self, repository: str, tag: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            found = self.clients.client("ecr").describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ClientError as error:
            # A new stack has no repository yet, a new build no tag: both mean "build it". Any other refusal
            # (no permission, throttling) stops the program rather than rebuild a tag ECR would refuse.
            if error.response.get("Error", {}).get("Code") in _ABSENT:
                return None
            raise
        details = found.get("imageDetails") or []
        return str(details[0]["imageDigest"]) if details else None


@dataclass(frozen=True)
class OfflineImages:
    """Answers without AWS: nothing is pushed, except the ``(repository, tag) -> digest`` pairs in ``pushed``."""

    pushed: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def pushed_digest(self, repository: str, tag: str) -> str | None:
        return self.pushed.get((repository, tag))
