"""Settings of the platform's container images (stack key ``images``): one entry per directory of ``containers/``.

An image is either built from the repository and pushed to the stack's own ECR repository by ``pulumi up``
(``build: true``, the default), or taken as it is from an ECR URI pinned by digest (``build: false`` with
``uri``): the way to promote the very image staging tested to prod, or to plan a stack whose account has no
ECR (the emulator stack).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from infra.types import Section

ImagePlatform = Literal["linux/amd64", "linux/arm64"]
"""Platforms SageMaker hosting runs: x86 instances (amd64) and Graviton instances such as ml.c7g (arm64)."""

EcrDigestUri = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9]+([._/-][a-z0-9]+)*@sha256:[0-9a-f]{64}$"
    ),
]
"""An image in a private ECR registry referenced by digest (``<registry>/<repository>@sha256:<64 hex>``):
SageMaker pulls exactly those bytes, whatever happens to tags later."""


class ImageSettings(Section):
    """One container image: how it is built, for which platforms, and how long ECR keeps old builds."""

    build: bool = Field(
        default=True,
        description="Build the image from containers/<name>/ and push it to the stack's ECR repository at "
        "`pulumi up` (a Docker engine with buildx where Pulumi runs); false: use `uri` as it is.",
    )
    uri: EcrDigestUri | None = Field(
        default=None,
        description="With build=false: the image to use, pinned by digest "
        "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<digest>), e.g. the one staging built.",
    )
    platforms: tuple[ImagePlatform, ...] = Field(
        default=("linux/amd64",),
        min_length=1,
        description="Platforms built (linux/amd64 for x86 instances, linux/arm64 for Graviton ones).",
    )
    keep_images: int = Field(
        default=50,
        ge=1,
        le=10000,
        description="Tagged images ECR keeps (newest first); older ones expire. A model version registered with "
        "an expired image cannot be deployed again, so keep at least as many as the registry may roll back to.",
    )
    untagged_expire_days: int = Field(
        default=7,
        ge=1,
        le=3650,
        description="Days after which untagged images (interrupted pushes) expire.",
    )

    @model_validator(mode="after")
    def _source(self) -> ImageSettings:
        if self.build and self.uri is not None:
            raise ValueError(
                f"uri={self.uri!r} is only used with build=false (set build: false to use that image, "
                "or remove uri to build and push from the repository)"
            )
        if not self.build and self.uri is None:
            raise ValueError(
                "build=false needs uri: the image to use, pinned by digest "
                "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<64 hex digits>)"
            )
        dupes = sorted({p for p in self.platforms if self.platforms.count(p) > 1})
        if dupes:
            raise ValueError(f"platforms lists {dupes} more than once")
        return self


class ImagesSettings(Section):
    """The platform's container images, by directory under ``containers/``."""

    inference: ImageSettings = Field(
        default_factory=lambda: ImageSettings(),
        description="The inference server (containers/inference): every registered model version runs it.",
    )
