"""The README's config reference and the published JSON Schema stay in step with the config model."""

from __future__ import annotations

import json
from pathlib import Path

from infra.config import PlatformConfig
from tools import config_docs

ROOT = Path(__file__).resolve().parents[2]


def test_readme_reference_is_generated_from_the_model() -> None:
    readme = (ROOT / "README.md").read_text()
    assert config_docs.readme_with_reference(readme) == readme, "run: make docs"


def test_published_schema_matches_the_model() -> None:
    assert (ROOT / "docs" / "config.schema.json").read_text() == config_docs.schema_text(), "run: make docs"


def test_every_key_is_documented_with_a_description() -> None:
    rows = config_docs._rows(PlatformConfig, "", set())
    cells = [row.removeprefix("| ").removesuffix(" |").split(" | ") for row in rows]
    assert all(len(c) == 4 for c in cells)
    undocumented = [key for key, _type, _default, description in cells if not description.strip()]
    assert rows and not undocumented, f"keys without a description: {undocumented}"


def test_schema_refuses_unknown_keys() -> None:
    schema = json.loads((ROOT / "docs" / "config.schema.json").read_text())
    assert schema["additionalProperties"] is False
