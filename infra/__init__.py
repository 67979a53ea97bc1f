"""Pulumi components of the MLOps platform, one per layer (see DESIGN.md)."""
