"""Pulumi entry point: read the stack's config, compose the platform, export its outputs."""

import pulumi

from infra import platform

for key, value in platform.program().items():
    pulumi.export(key, value)
