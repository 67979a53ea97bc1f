"""The platform's container images: ECR repositories and the builds ``pulumi up`` pushes to them."""

from infra.images.component import ContainerImage, ContainerImageArgs
from infra.images.settings import ImageSettings, ImagesSettings

__all__ = ["ContainerImage", "ContainerImageArgs", "ImageSettings", "ImagesSettings"]
