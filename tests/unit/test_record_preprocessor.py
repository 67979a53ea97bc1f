"""The Model Monitor record preprocessor: the generated script computes the container's features, alone.

The script runs in a separate ``python -I -S`` interpreter (standard library only: no site-packages, no
repository on the path), on captured requests shaped like SageMaker's data-capture JSON lines, through
record objects built like the analyzer's (``endpoint_input.data`` / ``.encoding`` / ``.observedContentType``).
Its answers are compared with the inference container's own parsing and ``compute_features`` in process.
It runs the same way under every older Python 3 that pyenv has here (the analyzer's interpreter is not
documented): 3.7 and later compute the same features; 3.6 is refused by the script's first statement.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from containers.inference.inference_server.errors import RequestError
from containers.inference.inference_server.payload import Featurizer, media_type, parse_records
from mlops.features import get_spec
from mlops.features.spec import compute_features
from mlops.monitoring import RecordPreprocessorError, build_record_preprocessor
from mlops.monitoring.record_preprocessor import embedded_modules

ROOT = Path(__file__).resolve().parents[2]
SPEC = get_spec("customer-churn")
RAW_COLUMNS = ("customer_id", "event_time", "sessions", "minutes_active", "support_tickets", "monthly_spend", "plan")
ROWS = [
    ("c-1", "2024-05-01T00:00:00Z", "3", "31.5", "1", "19.99", "basic"),
    ("c-2", "2024-05-01T00:00:00Z", "0", "0", "0", "5", "premium"),
    ("c-3", "2024-05-02T00:00:00Z", "7", "100", "4", "42.1", "platinum"),  # unknown plan -> tier -1
]


def csv_body(columns: tuple[str, ...] = RAW_COLUMNS, rows: list[tuple[str, ...]] = ROWS) -> str:
    return "\n".join(",".join(row) for row in [columns, *rows]) + "\n"


def json_record(row: tuple[str, ...]) -> dict[str, Any]:
    record: dict[str, Any] = dict(zip(RAW_COLUMNS, row, strict=True))
    for key in ("sessions", "support_tickets"):
        record[key] = int(record[key])
    for key in ("minutes_active", "monthly_spend"):
        record[key] = float(record[key])
    return record


def capture(data: str, content_type: str | None, encoding: str, event_id: str = "e-1") -> dict[str, Any]:
    """One line of SageMaker data capture (``captureData.endpointInput`` plus output and metadata)."""
    endpoint_input: dict[str, Any] = {"mode": "INPUT", "data": data, "encoding": encoding}
    if content_type is not None:
        endpoint_input["observedContentType"] = content_type
    return {
        "captureData": {
            "endpointInput": endpoint_input,
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "0.5\n", "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": "2024-05-01T12:00:00Z"},
        "eventVersion": "0",
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


GOOD = {
    "csv-one": capture(csv_body(rows=ROWS[:1]), "text/csv", "CSV"),
    "csv-batch": capture(csv_body(), "text/csv", "CSV"),
    "json-one": capture(json.dumps(json_record(ROWS[0])), "application/json", "JSON"),
    "json-batch": capture(json.dumps({"instances": [json_record(r) for r in ROWS]}), "application/json", "JSON"),
    "base64-csv": capture(b64(csv_body()), "text/csv; charset=utf-8", "BASE64"),
    "no-content-type": capture(csv_body(), None, "CSV"),
}
BAD = {
    "missing-column": (
        capture(csv_body(RAW_COLUMNS[:-2] + RAW_COLUMNS[-1:], [r[:-2] + r[-1:] for r in ROWS]), "text/csv", "CSV"),
        "captured event 'e-1': record 0: raw record lacks column 'monthly_spend' needed by spec 'customer-churn'",
    ),
    "not-a-number": (
        capture(
            csv_body(rows=[ROWS[0], ("c-9", "2024-05-01T00:00:00Z", "many", "1", "0", "1", "basic")]), "text/csv", "CSV"
        ),
        "captured event 'e-1': record 1: could not convert string to float: 'many'",
    ),
    "ragged-csv": (
        capture(csv_body() + "c-4,2024\n", "text/csv", "CSV"),
        "captured event 'e-1': CSV line 5 has 2 fields, the header has 7",
    ),
    "malformed-json": (
        capture('{"sessions": 1,', "application/json", "JSON"),
        "captured event 'e-1': malformed JSON: Expecting property name enclosed in double quotes: line 1 column 16 (char 15)",
    ),
    "json-nan": (
        capture('{"sessions": NaN}', "application/json", "JSON"),
        "captured event 'e-1': malformed JSON: NaN is not valid JSON",
    ),
    "other-content-type": (
        capture(b64("\x93NUMPY"), "application/x-npy", "BASE64"),
        "captured event 'e-1': content type 'application/x-npy' is not one the endpoint accepts: use text/csv or application/json",
    ),
    "bad-base64": (
        capture("not base64!", "text/csv", "BASE64"),
        "captured event 'e-1': captureData.endpointInput.data is not valid base64 (encoding BASE64)",
    ),
}

DRIVER = textwrap.dedent(
    '''
    """Load the record preprocessor like Model Monitor's analyzer and feed it captured records."""
    import importlib.util
    import json
    import logging
    import runpy
    import sys

    script, cases_path, out_path = sys.argv[1:4]
    visible = {name: importlib.util.find_spec(name) is not None for name in ("mlops", "numpy", "pandas", "orjson")}

    class EventData:  # the analyzer's record classes (SageMaker developer guide, "Preprocessing Script")
        def __init__(self, data, snake_case):
            self.encoding = data.get("encoding")
            self.data = data.get("data")
            self.mode = data.get("mode")
            if snake_case:
                self.observed_content_type = data.get("observedContentType")
            else:
                self.observedContentType = data.get("observedContentType")

    class EventMetadata:
        def __init__(self, metadata):
            self.event_id = metadata.get("eventId")
            self.event_time = metadata.get("inferenceTime")
            self.custom_attribute = metadata.get("customAttributes")

    class CapturedData:
        def __init__(self, event, snake_case):
            self.event_metadata = EventMetadata(event.get("eventMetadata", {}))
            self.endpoint_input = EventData(event["captureData"]["endpointInput"], snake_case)
            self.endpoint_output = EventData(event["captureData"]["endpointOutput"], snake_case)
            self.event_version = event.get("eventVersion")

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    namespace = runpy.run_path(script)
    handler = namespace["preprocess_handler"]
    results = {}
    logged = {}
    with open(cases_path, encoding="utf-8") as lines:
        for line in lines:
            case = json.loads(line)
            logger = logging.getLogger(case["name"])
            logger.propagate = False
            collected = Collect()
            logger.addHandler(collected)
            record = CapturedData(case["event"], case["snake_case"])
            try:
                results[case["name"]] = {"ok": handler(record, logger)}
            except Exception as exc:
                results[case["name"]] = {"error": type(exc).__name__, "message": str(exc)}
            logged[case["name"]] = collected.messages
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump({"visible": visible, "results": results, "logged": logged, "skipped": namespace["skipped_requests"]()}, out)
    '''
)


@pytest.fixture(scope="module")
def script() -> bytes:
    return build_record_preprocessor(SPEC)


def run_isolated(python: str, script: bytes, work: Path) -> subprocess.CompletedProcess[str]:
    """Every case through the script with ``python -I -S``, in ``work`` (outside the repository)."""
    (work / "record_preprocessor.py").write_bytes(script)
    (work / "driver.py").write_text(DRIVER, encoding="utf-8")
    cases = [{"name": name, "event": event, "snake_case": False} for name, event in GOOD.items()]
    cases += [{"name": name, "event": event, "snake_case": False} for name, (event, _) in BAD.items()]
    cases.append({"name": "snake-case", "event": GOOD["json-batch"], "snake_case": True})
    (work / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return subprocess.run(
        [python, "-I", "-S", "driver.py", "record_preprocessor.py", "cases.jsonl", "out.json"],
        cwd=work,
        env={},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def isolated(script: bytes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case through the script, in one ``python -I -S`` subprocess of this interpreter."""
    work = tmp_path_factory.mktemp("preprocessor")
    finished = run_isolated(sys.executable, script, work)
    assert finished.returncode == 0, finished.stderr
    return json.loads((work / "out.json").read_text(encoding="utf-8"))


def container_features(event: dict[str, Any]) -> list[dict[str, Any]]:
    """What the inference container computes for the captured request: its parser, then compute_features."""
    endpoint_input = event["captureData"]["endpointInput"]
    data = endpoint_input["data"]
    body = base64.b64decode(data) if endpoint_input["encoding"] == "BASE64" else data.encode()
    content_type = (
        media_type(endpoint_input.get("observedContentType")) or {"CSV": "text/csv"}[endpoint_input["encoding"]]
    )
    return [compute_features(SPEC, record) for record in parse_records(body, content_type, max_rows=1000)]


def as_list(result: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return result if isinstance(result, list) else [result]


# --- the generated script, run alone --------------------------------------------------------------


def test_the_script_runs_with_the_standard_library_only(isolated: dict[str, Any]) -> None:
    assert isolated["visible"] == {"mlops": False, "numpy": False, "pandas": False, "orjson": False}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_features_equal_the_containers_compute_features(isolated: dict[str, Any], case: str) -> None:
    result = isolated["results"][case]
    assert "ok" in result, result
    assert as_list(result["ok"]) == container_features(GOOD[case])


@pytest.mark.parametrize("case", sorted(GOOD))
def test_features_come_in_baseline_column_order_with_the_specs_types(isolated: dict[str, Any], case: str) -> None:
    python_types = {"Integral": int, "Fractional": float, "String": str}
    for features in as_list(isolated["results"][case]["ok"]):
        assert list(features) == list(SPEC.feature_names)
        assert {name: type(value) for name, value in features.items()} == {
            name: python_types[SPEC.feature_type(name)] for name in SPEC.feature_names
        }


def test_a_one_record_request_gives_a_dict_and_a_batch_a_list(isolated: dict[str, Any]) -> None:
    results = isolated["results"]
    assert isinstance(results["csv-one"]["ok"], dict)
    assert isinstance(results["json-one"]["ok"], dict)
    assert len(results["csv-batch"]["ok"]) == len(ROWS)
    assert len(results["json-batch"]["ok"]) == len(ROWS)


def test_the_snake_case_content_type_attribute_is_read_too(isolated: dict[str, Any]) -> None:
    assert isolated["results"]["snake-case"]["ok"] == isolated["results"]["json-batch"]["ok"]


# One malformed request used to raise, and a record preprocessor's exception fails the whole monitoring run.
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_request_is_skipped_with_the_empty_list_the_analyzer_drops(isolated: dict[str, Any], case: str) -> None:
    assert isolated["results"][case] == {"ok": []}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_skipped_request_is_logged_naming_the_event_the_problem_and_the_count(
    isolated: dict[str, Any], case: str
) -> None:
    pattern = re.escape(f"skipped {BAD[case][1]}") + r" \((\d+) skipped by this process\)"
    assert len(isolated["logged"][case]) == 1
    assert re.fullmatch(pattern, isolated["logged"][case][0])


def test_every_skipped_request_is_counted_and_no_good_one(isolated: dict[str, Any]) -> None:
    assert isolated["skipped"] == len(BAD)
    running = [re.findall(r"\((\d+) skipped by this process\)", isolated["logged"][case][0]) for case in BAD]
    assert sorted(int(found[0]) for found in running) == list(range(1, len(BAD) + 1))
    assert all(isolated["logged"][case] == [] for case in GOOD)


# An undecodable BASE64 capture has no container counterpart: the container received the bytes themselves.
@pytest.mark.parametrize("case", sorted(set(BAD) - {"bad-base64"}))
def test_the_container_refuses_every_request_the_script_refuses(case: str) -> None:
    endpoint_input = BAD[case][0]["captureData"]["endpointInput"]
    data = endpoint_input["data"]
    body = base64.b64decode(data) if endpoint_input["encoding"] == "BASE64" else data.encode()
    with pytest.raises(RequestError) as refused:
        Featurizer(SPEC)(parse_records(body, media_type(endpoint_input["observedContentType"]), max_rows=1000))
    assert refused.value.status in (400, 415)


# --- building the script --------------------------------------------------------------------------


def test_the_script_is_deterministic_across_interpreters(script: bytes) -> None:
    code = (
        "import sys; from mlops.features import get_spec; from mlops.monitoring import build_record_preprocessor; "
        "sys.stdout.buffer.write(build_record_preprocessor(get_spec('customer-churn')))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={"PYTHONHASHSEED": "12345"}, capture_output=True, check=True
    ).stdout
    assert other == script == build_record_preprocessor(SPEC)


def test_the_script_embeds_the_spec_library_and_the_specs_module() -> None:
    names = [name for name, _ in embedded_modules("mlops.features.customer_churn")]
    assert names == ["mlops.features.spec", "mlops.features.customer_churn"]


def test_the_script_embeds_the_repositorys_sources_verbatim(script: bytes) -> None:
    for name, source in embedded_modules("mlops.features.customer_churn"):
        path = ROOT / (name.replace(".", "/") + ".py")
        assert source == path.read_text(encoding="utf-8")
        assert repr(source) in script.decode()


def write_spec_module(directory: Path, name: str, header: str, spec_line: str = "SPEC = make()") -> None:
    (directory / f"{name}.py").write_text(
        header
        + textwrap.dedent(
            """
            from mlops.features.spec import Feature, FeatureSpec


            def transform(record):
                return {"x": int(record["x"])}


            def make():
                return FeatureSpec(
                    name="probe", version=1, record_identifier="id", event_time="t",
                    features=(Feature("x", "Integral"),), transform=transform,
                )
            """
        )
        + spec_line
        + "\n",
        encoding="utf-8",
    )


def load_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, header: str, spec_line: str) -> Any:
    import importlib

    write_spec_module(tmp_path, name, header, spec_line)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(name)
    return module.SPEC if hasattr(module, "SPEC") else module.make()


def test_a_third_party_import_at_module_level_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = load_spec(monkeypatch, tmp_path, "probe_spec_json_lib", "import pytest\n", "SPEC = make()")
    with pytest.raises(RecordPreprocessorError) as refused:
        build_record_preprocessor(spec)
    assert str(refused.value) == (
        "module 'probe_spec_json_lib' imports 'pytest' at import time; the record preprocessor can embed only "
        "standard-library and mlops imports (import it inside the function that needs it)"
    )


def test_a_type_checking_import_is_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    header = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas\n"
    spec = load_spec(monkeypatch, tmp_path, "probe_spec_type_checking", header, "SPEC = make()")
    assert b"probe_spec_type_checking" in build_record_preprocessor(spec)


def test_a_package_re_export_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    header = "from mlops.features import get_spec\n"
    spec = load_spec(monkeypatch, tmp_path, "probe_spec_reexport", header, "SPEC = make()")
    with pytest.raises(RecordPreprocessorError) as refused:
        build_record_preprocessor(spec)
    assert str(refused.value) == (
        "module 'probe_spec_reexport' imports 'get_spec' from package 'mlops.features'; the record preprocessor "
        "does not run package __init__ files: import it from the module that defines it"
    )


def test_a_spec_that_is_not_a_module_attribute_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = load_spec(monkeypatch, tmp_path, "probe_spec_unnamed", "", "")
    with pytest.raises(RecordPreprocessorError) as refused:
        build_record_preprocessor(spec)
    assert str(refused.value) == (
        "feature spec 'probe' is not a module-level attribute of 'probe_spec_unnamed', the module defining its "
        "transform: define the spec and its transform in one module"
    )


# --- older interpreters ----------------------------------------------------------------------------

OLDER_PYTHONS = ("3.7", "3.8", "3.9", "3.10")


def pyenv_python(version: str) -> str | None:
    """A ``version`` interpreter (``"3.8"``) installed by pyenv on this machine, if any."""
    for root in filter(None, (os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv"))):
        for installed in sorted(Path(root, "versions").glob(f"{version}.*")):
            if (installed / "bin" / "python3").is_file():
                return str(installed / "bin" / "python3")
    return None


def need_python(version: str) -> str:
    python = pyenv_python(version)
    if python is None:
        pytest.skip(f"no Python {version} installed with pyenv here")
    return python


@pytest.fixture(scope="module", params=OLDER_PYTHONS)
def older(request: pytest.FixtureRequest, script: bytes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case through the script under an older interpreter."""
    work = tmp_path_factory.mktemp(f"preprocessor-{request.param}")
    finished = run_isolated(need_python(request.param), script, work)
    assert finished.returncode == 0, finished.stderr
    return json.loads((work / "out.json").read_text(encoding="utf-8"))


def test_older_pythons_give_the_same_features_and_skip_the_same_requests(
    older: dict[str, Any], isolated: dict[str, Any]
) -> None:
    assert older["results"] == isolated["results"]
    assert older["skipped"] == len(BAD)


@pytest.mark.parametrize("version", ("3.6", *OLDER_PYTHONS))
def test_the_script_compiles_under_older_pythons(script: bytes, tmp_path: Path, version: str) -> None:
    (tmp_path / "record_preprocessor.py").write_bytes(script)
    check = "import sys; compile(open(sys.argv[1], encoding='utf-8').read(), sys.argv[1], 'exec', dont_inherit=True)"
    finished = subprocess.run(
        [need_python(version), "-I", "-S", "-c", check, str(tmp_path / "record_preprocessor.py")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr


def test_python_3_6_is_refused_by_the_first_statement_with_a_clear_message(script: bytes, tmp_path: Path) -> None:
    finished = run_isolated(need_python("3.6"), script, tmp_path)
    assert finished.returncode != 0
    assert "RuntimeError: this record preprocessor needs Python 3.7 or later" in finished.stderr
