"""docs/config.schema.json validates the stack files as they are written, and refuses what the loader refuses.

The schema is checked twice: with the pinned ``jsonschema`` library (always installed), and with the
``check-jsonschema`` command that CI and editors' tooling run (skipped, with the install command, where absent).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema.protocols import Validator

from infra.config import CONFIG_NAMESPACE, ConfigError, PlatformConfig, parse_stack_config
from infra.types import LOG_RETENTION_DAYS, to_camel
from verify.mock_engine import read_stack_values

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "docs" / "config.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
STACK_FILES = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
SCHEMA_COMMENT = "# yaml-language-server: $schema=../docs/config.schema.json"
CHECK_JSONSCHEMA_PIN = "check-jsonschema==0.39.0"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


@pytest.fixture
def dev() -> dict[str, Any]:
    """The dev stack file as parsed YAML, to break one key at a time."""
    return yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())


def problems(validator: Validator, document: Any) -> list[tuple[str, str, Any]]:
    """Each error as (where, which rule, the bad value)."""
    return sorted(
        ((e.json_path, str(e.validator), e.instance) for e in validator.iter_errors(document)), key=lambda p: p[0]
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_every_stack_file_validates_as_written(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    assert problems(validator, yaml.safe_load(path.read_text())) == []


def test_draft_7_engines_accept_every_stack_file() -> None:
    # the YAML language server validates with draft-07 semantics (redhat-developer/yaml-language-server#856)
    draft7 = jsonschema.Draft7Validator(SCHEMA)
    assert [p.name for p in STACK_FILES if problems(draft7, yaml.safe_load(p.read_text()))] == []


def test_draft_7_engines_refuse_an_unknown_key(dev: dict[str, Any]) -> None:
    dev["config"]["mlops:ownr"] = "ml-platform"
    assert problems(jsonschema.Draft7Validator(SCHEMA), dev) == [("$.config", "enum", "mlops:ownr")]


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_every_stack_file_names_the_schema_for_editors(path: Path) -> None:
    assert path.read_text().splitlines()[0] == SCHEMA_COMMENT


def test_the_mlops_keys_are_exactly_the_loaders() -> None:
    # the loader reads region from aws:region and refuses mlops:region
    loader_keys = {f"{CONFIG_NAMESPACE}:{to_camel(n)}" for n in PlatformConfig.model_fields if n != "region"}
    config = SCHEMA["$defs"]["StackConfig"]
    assert set(config["propertyNames"]["then"]["enum"]) == loader_keys
    assert {k for k in config["properties"] if k.startswith(f"{CONFIG_NAMESPACE}:")} == loader_keys


def test_an_unknown_mlops_key_is_refused(validator: jsonschema.Draft202012Validator, dev: dict[str, Any]) -> None:
    dev["config"]["mlops:ownr"] = "ml-platform"
    assert problems(validator, dev) == [("$.config", "enum", "mlops:ownr")]


def test_mlops_region_is_refused(validator: jsonschema.Draft202012Validator, dev: dict[str, Any]) -> None:
    dev["config"]["mlops:region"] = "eu-west-1"
    assert problems(validator, dev) == [("$.config", "enum", "mlops:region")]


def test_an_unknown_nested_key_is_refused(validator: jsonschema.Draft202012Validator, dev: dict[str, Any]) -> None:
    dev["config"]["mlops:kms"]["rotation"] = 90
    assert problems(validator, dev) == [("$.config['mlops:kms']", "additionalProperties", dev["config"]["mlops:kms"])]


def test_a_value_outside_its_allowed_set_is_refused(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    dev["config"]["mlops:models"][0]["featureStore"]["offlineTableFormat"] = "Delta"
    assert problems(validator, dev) == [
        ("$.config['mlops:models'][0].featureStore.offlineTableFormat", "enum", "Delta")
    ]


def test_log_retention_days_are_cloudwatchs_allowed_set() -> None:
    retention = SCHEMA["$defs"]["StackConfig"]["properties"]["mlops:logRetentionDays"]
    assert [v for v in retention["enum"] if isinstance(v, int)] == list(LOG_RETENTION_DAYS)


def test_a_log_retention_cloudwatch_does_not_offer_is_refused(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    dev["config"]["mlops:logRetentionDays"] = 15
    assert problems(validator, dev) == [("$.config['mlops:logRetentionDays']", "enum", 15)]


def test_a_wrong_type_is_refused(validator: jsonschema.Draft202012Validator, dev: dict[str, Any]) -> None:
    dev["config"]["mlops:models"][0]["training"]["trainingInstanceCount"] = "one"
    assert problems(validator, dev) == [("$.config['mlops:models'][0].training.trainingInstanceCount", "type", "one")]


def test_a_value_out_of_range_is_refused(validator: jsonschema.Draft202012Validator, dev: dict[str, Any]) -> None:
    dev["config"]["mlops:kms"]["deletionWindowDays"] = 3
    assert problems(validator, dev) == [("$.config['mlops:kms'].deletionWindowDays", "minimum", 3)]


def test_a_region_that_is_not_an_aws_region_is_refused(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    dev["config"]["aws:region"] = "eu-west-9"
    assert problems(validator, dev) == [("$.config['aws:region']", "enum", "eu-west-9")]


def test_a_missing_required_key_is_refused(validator: jsonschema.Draft202012Validator, dev: dict[str, Any]) -> None:
    del dev["config"]["mlops:owner"]
    assert problems(validator, dev) == [("$.config", "required", dev["config"])]


def test_required_keys_may_come_from_esc_environments(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    del dev["config"]["mlops:owner"]
    dev["environment"] = ["acme/mlops-dev"]
    assert problems(validator, dev) == []


def test_the_strings_pulumi_config_set_writes_are_accepted(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    # `pulumi config set mlops:production true` writes the string "true"; the loader parses it as JSON
    dev["config"] |= {
        "mlops:production": "true",
        "mlops:logRetentionDays": "14",
        "mlops:protectStatefulResources": "false",
    }
    assert problems(validator, dev) == []


def test_structured_values_as_json_strings_are_refused(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    # the loader would parse them, but the schema cannot see inside a string: write the mapping as YAML
    dev["config"]["mlops:kms"] = json.dumps(dev["config"]["mlops:kms"])
    assert problems(validator, dev) == [("$.config['mlops:kms']", "type", dev["config"]["mlops:kms"])]


def test_the_providers_keys_take_any_value(validator: jsonschema.Draft202012Validator, dev: dict[str, Any]) -> None:
    dev["config"] |= {
        "aws:profile": "acme-dev",
        "aws:defaultTags": {"tags": {"Team": "ml"}},
        "aws-native:region": "eu-west-1",
        "docker-build:registries": [{"address": "example.com"}],
        "aws:secretKey": {"secure": "v1:abc"},
        "pulumi:disable-default-providers": ["*"],
    }
    assert problems(validator, dev) == []


def test_a_key_in_a_namespace_nothing_reads_is_refused(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    dev["config"]["mlop:tags"] = {"Team": "ml"}  # a typo the loader refuses too: PROVIDER_NAMESPACES
    assert problems(validator, dev) == [("$.config", "pattern", "mlop:tags")]


def test_a_config_key_without_namespace_is_refused(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    dev["config"]["owner"] = "ml-platform"
    assert problems(validator, dev) == [("$.config", "pattern", "owner")]


def test_pulumis_own_top_level_keys_are_accepted(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any]
) -> None:
    dev |= {"secretsprovider": "passphrase", "encryptionsalt": "v1:c2FsdA==:v1:abc:def", "encryptedkey": "a2V5"}
    assert problems(validator, dev) == []


def test_an_unknown_top_level_key_is_refused(validator: jsonschema.Draft202012Validator, dev: dict[str, Any]) -> None:
    dev["configs"] = {}
    assert problems(validator, dev) == [("$", "additionalProperties", dev)]


# --- the schema and the loader agree --------------------------------------------------------------------

AGREEMENT: dict[str, tuple[Any, bool, bool]] = {
    # name: (how to change the dev stack's config, the schema accepts it, the loader accepts it)
    "as-written": (lambda c: None, True, True),
    "config-set-strings": (
        lambda c: c.update({"mlops:production": "false", "mlops:logRetentionDays": "14"}),
        True,
        True,
    ),
    "provider-keys": (lambda c: c.update({"aws-native:region": "eu-west-1", "docker-build:x": [1]}), True, True),
    "unknown-key": (lambda c: c.update({"mlops:ownr": "x"}), False, False),
    "mlops-region": (lambda c: c.update({"mlops:region": "eu-west-1"}), False, False),
    "unknown-namespace": (lambda c: c.update({"mlop:tags": {}}), False, False),
    "no-namespace": (lambda c: c.update({"owner": "x"}), False, False),
    "unknown-nested-key": (lambda c: c["mlops:kms"].update({"rotation": 90}), False, False),
    "enum": (lambda c: c["mlops:models"][0]["featureStore"].update({"offlineTableFormat": "Delta"}), False, False),
    "retention": (lambda c: c.update({"mlops:logRetentionDays": 15}), False, False),
    "type": (lambda c: c["mlops:models"][0]["training"].update({"trainingInstanceCount": "one"}), False, False),
    "range": (lambda c: c["mlops:kms"].update({"deletionWindowDays": 3}), False, False),
    "region": (lambda c: c.update({"aws:region": "eu-west-9"}), False, False),
    "missing": (lambda c: c.pop("mlops:owner"), False, False),
    # the one known difference: the loader parses a JSON string; the schema cannot look inside one
    "json-string": (lambda c: c.update({"mlops:kms": json.dumps(c["mlops:kms"])}), False, True),
}


@pytest.mark.parametrize("name", AGREEMENT)
def test_the_schema_and_the_loader_agree(
    validator: jsonschema.Draft202012Validator, dev: dict[str, Any], tmp_path: Path, name: str
) -> None:
    change, schema_accepts, loader_accepts = AGREEMENT[name]
    change(dev["config"])
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(dev, sort_keys=False))
    try:
        parse_stack_config(read_stack_values("dev", path), "dev")
        loaded = True
    except ConfigError:
        loaded = False
    assert (not problems(validator, dev), loaded) == (schema_accepts, loader_accepts)


# --- the check-jsonschema command (what CI runs; its regular expressions are ECMA-262's, as editors' are) ---

BROKEN: dict[str, tuple[Any, str]] = {
    # name: (how to break the dev stack's config, what check-jsonschema must say)
    "unknown-key": (lambda c: c.update({"mlops:ownr": "x"}), "'mlops:ownr' is not one of ['mlops:alerts', "),
    "enum": (
        lambda c: c["mlops:models"][0]["serving"].update({"strategy": "blue-green"}),
        "'blue-green' is not one of ['single', 'ab', 'shadow', 'serverless']",
    ),
    "boolean": (lambda c: c.update({"mlops:production": "yes"}), "'yes' is not one of [True, False, 'true', 'false']"),
    "type": (lambda c: c["mlops:lake"].update({"accessLogRetentionDays": "30"}), "'30' is not of type 'integer'"),
}


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.skip(f"check-jsonschema is not installed: .venv/bin/pip install {CHECK_JSONSCHEMA_PIN}")
    command = [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA_PATH), *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """check-jsonschema run once over one broken copy of the dev stack per BROKEN entry: its lines per file."""
    dev = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    folder = tmp_path_factory.mktemp("broken-stacks")
    for name, (break_it, _message) in BROKEN.items():
        broken = copy.deepcopy(dev)
        break_it(broken["config"])
        (folder / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(broken, sort_keys=False))
    result = check_jsonschema(*sorted(folder.iterdir()))
    assert result.returncode == 1, result.stdout + result.stderr
    return {name: [line for line in result.stdout.splitlines() if f"Pulumi.{name}.yaml::" in line] for name in BROKEN}


def test_check_jsonschema_accepts_every_stack_file() -> None:
    result = check_jsonschema(*STACK_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", BROKEN)
def test_check_jsonschema_refuses_a_broken_stack_file(broken_report: dict[str, list[str]], name: str) -> None:
    [line] = broken_report[name]
    assert BROKEN[name][1] in line
