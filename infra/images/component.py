"""A container image of the platform: its ECR repository, and the build ``pulumi up`` pushes there.

- Repository ``<project>-<env>-<name>``: encrypted with the platform key, immutable tags, scanned on push,
  a lifecycle policy (keep the newest ``keepImages`` tagged images, expire untagged ones after
  ``untaggedExpireDays``) and, when models share their registry with other accounts
  (``training.registryAccountIds``), a repository policy that lets those accounts pull and nothing else.
  Stateful (protected and retained as the stack says): it holds the images model versions name (the lifecycle
  keeps the newest ``keepImages`` builds: set it to cover every version the registry may roll back to). Its
  encryption is fixed at creation (a new key means a new repository, which a protected stack refuses).
- Build (``pulumi-docker-build``, buildx): ``containers/<name>/Dockerfile`` with the repository root as
  context, for the configured platforms, tagged with the content hash of the files the ignore file admits
  (:mod:`infra.images.context`), pushed with a login token from ECR's ``GetAuthorizationToken`` for the
  stack's account. The registry address and the tag are computed from values known at preview (account,
  region, names), so a preview of a brand-new stack builds the image too (without pushing: the provider never
  pushes during previews) and a broken Dockerfile fails the pull request, not the deployment.
- When ECR already holds the tag (the sources went back to a state already built), nothing is built: the
  image's digest is read from ECR (:mod:`infra.images.registry`), because ECR refuses to push a tag twice.
- ``image_uri`` is ``<registry>/<repository>@sha256:...``: what every model version registers, so a
  version and the code that serves it are one immutable pair. The build resource is retained on delete:
  its provider would otherwise delete the pushed manifest, and versions still name it.

With ``build: false`` there is neither repository nor build: ``image_uri`` is the configured ``uri``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from infra.images.context import build_context
from infra.images.iam import consumer_pull_policy
from infra.images.settings import ImageSettings
from infra.naming import Kind

if TYPE_CHECKING:
    from infra.context import StackContext


def registry_host(account_id: str, region: str) -> str:
    """The private registry's host name of an account in a region (``.com.cn`` in the China partition)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account_id}.dkr.ecr.{region}.{suffix}"


def repository_arn_of(uri: str) -> str:
    """The repository ARN of an ECR image URI pinned by digest (``<account>.dkr.ecr.<region>.<suffix>/<name>@sha256:...``)."""
    host, _, rest = uri.partition("/")
    account, _, _, region = host.split(".")[:4]
    name = rest.split("@", 1)[0]
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"


def lifecycle_policy(keep_images: int, untagged_expire_days: int) -> str:
    """ECR lifecycle rules: untagged images expire first (interrupted or superseded pushes), then tagged images
    beyond the newest ``keep_images``. ECR applies the lower priority number first."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Untagged images expire after {untagged_expire_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_expire_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"Keep the newest {keep_images} builds",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["*"],
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_images,
                    },
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )


@dataclass(frozen=True, kw_only=True)
class ContainerImageArgs:
    """Inputs of :class:`ContainerImage`: which container, its settings, the stack's key and account, and the
    accounts that deploy from this stack's registry."""

    context: StackContext
    name: str
    """Directory under ``containers/``."""
    settings: ImageSettings
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Output[str]
    consumer_account_ids: Sequence[str] = ()


class ContainerImage(pulumi.ComponentResource):
    """One platform image. Outputs: ``image_uri`` (by digest), ``repository_arn``; ``repository`` and ``build``
    are ``None`` when the image is configured by URI (and ``build`` when ECR already holds the tag)."""

    repository: aws.ecr.Repository | None
    build: docker_build.Image | None
    image_uri: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    tag: str | None

    def __init__(self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:images:ContainerImage", name, None, opts)
        settings = args.settings
        self.repository = None
        self.build = None
        self.tag = None
        if not settings.build:
            assert settings.uri is not None  # the settings refuse build=false without uri
            self.image_uri = pulumi.Output.from_input(settings.uri)
            self.repository_arn = pulumi.Output.from_input(repository_arn_of(settings.uri))
        else:
            self._build(name, args)
        self.register_outputs({"image_uri": self.image_uri, "repository_arn": self.repository_arn})

    def _build(self, name: str, args: ContainerImageArgs) -> None:
        ctx, settings = args.context, args.settings
        tags = ctx.naming.tags(Container=args.name)
        repository_name = ctx.naming.name(args.name, Kind.ECR_REPOSITORY)
        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            name=repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=args.kms_key_arn)
            ],
            # Never delete images with the repository: registered model versions name them by digest.
            force_delete=False,
            tags=tags,
            opts=ctx.stateful(self),
        )
        self.repository_arn = self.repository.arn
        lifecycle = aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=lifecycle_policy(settings.keep_images, settings.untagged_expire_days),
            opts=pulumi.ResourceOptions(parent=self.repository),
        )
        if args.consumer_account_ids:
            aws.ecr.RepositoryPolicy(
                f"{name}-consumers",
                repository=self.repository.name,
                policy=consumer_pull_policy(args.consumer_account_ids),
                opts=pulumi.ResourceOptions(parent=self.repository),
            )

        source = build_context(args.name)
        self.tag = source.tag(settings.platforms)
        host = args.account_id.apply(lambda account: registry_host(account, ctx.config.region))
        reference = pulumi.Output.concat(host, "/", repository_name)
        pushed = ctx.images.pushed_digest(repository_name, self.tag)
        if pushed is not None:
            # ECR holds this content already (and refuses the same tag twice): use it as it is.
            self.image_uri = pulumi.Output.concat(reference, "@", pushed)
            return
        token = aws.ecr.get_authorization_token_output(registry_id=args.account_id)
        self.build = docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location="."),  # the repository root (Pulumi's working dir)
            dockerfile=docker_build.DockerfileArgs(location=source.dockerfile),
            platforms=[docker_build.Platform(p) for p in settings.platforms],
            tags=[pulumi.Output.concat(reference, ":", self.tag)],
            labels={"org.opencontainers.image.version": self.tag, "org.opencontainers.image.title": args.name},
            push=True,
            registries=[docker_build.RegistryArgs(address=host, username=token.user_name, password=token.password)],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.repository, lifecycle],
                # Deleting this resource deletes the pushed manifest from ECR; model versions still name it.
                retain_on_delete=True,
            ),
        )
        self.image_uri = pulumi.Output.concat(reference, "@", self.build.digest)
