"""Property-based tests (Hypothesis) of the stack-config loader and the plan CLI's exit codes (issue 15).

Whatever a stack file holds:

* reading and validating it gives a ``PlatformConfig`` or a ``ConfigError``: never another exception;
* every problem is one line, and names the key it is about (or the file, when the file itself is unusable);
* a valid stack with one value replaced anywhere is still valid, or is refused naming the replaced key;
* the plan CLI answers exit code 2 with ``error:`` lines on stderr and no traceback.

Examples are bounded and no example database is written into the work tree, so the unit tier stays quick.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from infra.config import ConfigError, PlatformConfig, one_line, parse_stack_config
from verify import plan as plan_cli
from verify.mock_engine import read_stack_values

ROOT = Path(__file__).resolve().parents[2]
DEV = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
REQUIRED = ["mlops:project", "mlops:environment", "mlops:owner", "mlops:costCenter", "aws:region"]

PROPERTIES = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- strategies ------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included
    st.text(max_size=12),
    st.sampled_from(["on", "off", "yes", "no", "null", "~", "2024-01-01", "cron(0 3 * * ? *)", "rate(1 hour)"]),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=6),
)
mapping_keys = st.one_of(
    st.text(max_size=10), st.integers(), st.booleans(), st.sampled_from(["name", "zone", "weight"])
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(mapping_keys, children, max_size=4),
    max_leaves=16,
)
config_keys = st.one_of(
    st.sampled_from(
        [f"mlops:{key}" for key in PlatformConfig.model_json_schema(by_alias=True)["properties"]]
        + ["aws:region", "mlop:tags", "tags", "pulumi:x", "aws-native:region", ":", "mlops:"]
    ),
    st.text(max_size=12),
)
yaml_syntax = st.text(
    alphabet=st.sampled_from(
        [*"config:mlops-aws &*!|>-[]{},?#'\"%@`\\.0123456789\n\t ", "\x00", "é", "\ufeff", "\u2028"]
    ),
    max_size=160,
)


def _write(directory: Path, content: str | bytes) -> Path:
    path = directory / "Pulumi.dev.yaml"
    path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    return path


def _load(path: Path) -> PlatformConfig | ConfigError:
    """The loader's whole path: read the stack file, then validate it. Anything else it raises fails the test."""
    try:
        return parse_stack_config(read_stack_values("dev", path), "dev")
    except ConfigError as error:
        return error


def _one_line_each(error: ConfigError) -> None:
    assert error.problems, "a ConfigError must say what is wrong"
    for problem in error.problems:
        assert problem.strip() and "\n" not in problem and "\r" not in problem, problem
        assert all(c.isprintable() for c in problem), problem


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stacks")


# --- properties ----------------------------------------------------------------------------------------------


@PROPERTIES
@given(content=st.one_of(yaml_syntax, st.binary(max_size=160)))
@example(content="config: &a [*a]\n")
@example(content="config:\n  mlops:project: [" * 40)
@example(content="config:\n  mlops:owner: " + "9" * 5000 + "\n")
@example(content=b"\xff\xfec\x00o\x00")
def test_any_file_content_is_a_config_or_a_config_error(directory: Path, content: str | bytes) -> None:
    path = _write(directory, content)
    outcome = _load(path)
    if isinstance(outcome, ConfigError):
        _one_line_each(outcome)


@PROPERTIES
@given(config=st.dictionaries(config_keys, values, max_size=6))
def test_any_config_block_is_a_config_or_errors_naming_keys(directory: Path, config: dict[Any, Any]) -> None:
    text = yaml.safe_dump({"config": config}, allow_unicode=True)
    path = _write(directory, text)
    outcome = _load(path)
    if isinstance(outcome, PlatformConfig):
        return
    _one_line_each(outcome)
    read = yaml.safe_load(text)["config"]  # the keys as YAML reads them back (it folds some line breaks)
    keys = [k for k in read if isinstance(k, str)]
    for problem in outcome.problems:
        shown = [one_line(k) for k in keys if k.strip()]  # keys appear with control characters escaped
        named = [str(path), *shown, *map(json.dumps, keys), *REQUIRED, "mlops: "]  # "mlops: " a rule over keys
        assert any(problem.startswith((f"{name}:", f"{name}.", name.rstrip())) for name in named), problem


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``node`` (mapping keys and list indexes), the node's own first."""
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


DEV_PATHS = [path for path in _paths(DEV["config"]) if path]


def _replaced(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(document))
    node: Any = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return copy


@PROPERTIES
@given(path=st.sampled_from(DEV_PATHS), value=values)
@example(path=("mlops:environment",), value=True)
@example(path=("mlops:project",), value=None)
@example(path=("mlops:models", 0, "serving", "serverless", "maxConcurrency"), value=float("nan"))
def test_one_value_replaced_anywhere_is_valid_or_refused_naming_its_key(
    directory: Path, path: tuple[Any, ...], value: Any
) -> None:
    document = {"config": _replaced(DEV["config"], path, value)}
    stack_file = _write(directory, yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    outcome = _load(stack_file)
    if isinstance(outcome, PlatformConfig):
        return
    _one_line_each(outcome)
    top = str(path[0])
    name = top.partition(":")[2]
    assert any(top in p or name in p for p in outcome.problems), (path, value, outcome.problems)


@PROPERTIES
@given(content=st.one_of(yaml_syntax, st.binary(max_size=120), values.map(lambda v: yaml.safe_dump({"config": v}))))
def test_the_plan_cli_exits_2_with_error_lines_and_no_traceback(directory: Path, content: str | bytes) -> None:
    path = _write(directory, content)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = plan_cli.main(["--stack", "dev", "--stack-file", str(path), "--no-policies", "--no-contract"])
    assert status == 2, (status, err.getvalue())
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert lines and all(line.startswith("error: stack 'dev': ") for line in lines), lines
    assert "Traceback" not in err.getvalue()
