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


def test_schema_refuses_unknown_keys_in_every_section() -> None:
    schema = json.loads((ROOT / "docs" / "config.schema.json").read_text())
    sections = {name: d for name, d in schema["$defs"].items() if d.get("type") == "object" and name != "StackConfig"}
    assert schema["additionalProperties"] is False
    assert sections and {name for name, d in sections.items() if d.get("additionalProperties") is not False} == set()


def test_schema_describes_the_stack_file_not_the_inner_object() -> None:
    schema = json.loads((ROOT / "docs" / "config.schema.json").read_text())
    assert schema["properties"]["config"] == {"$ref": "#/$defs/StackConfig"}
    assert "aws:region" in schema["$defs"]["StackConfig"]["properties"]
