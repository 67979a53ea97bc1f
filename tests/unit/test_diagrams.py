"""The README's Mermaid diagrams stay readable on GitHub: several small top-down flowcharts, not one wide one.

Two layers of checks:

- structure (always): each diagram is a titled top-down flowchart written in the small subset of Mermaid this
  file understands (node definitions on their own lines, edges between ids); subgraphs are balanced; every edge
  names a defined node; labels are short and nodes few, so no node wraps and no diagram grows wide;
- Mermaid itself (when installed): ``mermaid.parse`` accepts every diagram. Install it once with
  ``npm install --prefix .venv/mermaid --no-save mermaid@11.17.2 jsdom@27.4.0`` (Node.js 20.19 or later; jsdom
  gives Mermaid's HTML sanitiser the DOM it expects; no browser needed).

Neither renders: the layout (how wide dagre makes a diagram) is judged from the bounds below, which kept the
diagrams at 525 and 641 px wide when rendered with mermaid-cli 11.12 (the single diagram they replace: 4,097 px).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MERMAID_PREFIX = Path(os.environ.get("MERMAID_PREFIX", ROOT / ".venv" / "mermaid"))
MERMAID_INSTALL = "npm install --prefix .venv/mermaid --no-save mermaid@11.17.2 jsdom@27.4.0"

MAX_NODES = 12
MAX_LABEL_LINES = 3
MAX_LABEL_LINE = 24  # characters: Mermaid wraps a label line at 200 px, about 24 characters of its default font

ID = r"[A-Za-z][A-Za-z0-9_]*"
SHAPES = {"[": "]", "(": ")", "([": "])", "[(": ")]", "((": "))", "[[": "]]", "{": "}"}
NODE = re.compile(rf'^(?P<id>{ID})(?P<open>\(\[|\[\(|\(\(|\[\[|\[|\(|\{{)"(?P<label>[^"]+)"(?P<close>[\])}}]+)$')
SUBGRAPH = re.compile(rf'^subgraph (?P<id>{ID})(\["(?P<label>[^"]+)"\])?$')
ARROW = r'\s*(?:-->|-\.->|==>|---|-\.-)(?:\|(?P<q>"?)[^|"]+(?P=q)\|)?\s*'
EDGE = re.compile(rf"^{ID}(?:{ARROW}{ID})+$")
EDGE_LABEL = re.compile(r'\|"?([^|"]+)"?\|')


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)


@dataclass
class Flowchart:
    """What the structural checks need from one diagram; ``problems`` lists every line it could not accept."""

    title: str = ""
    direction: str = ""
    nodes: dict[str, str] = field(default_factory=dict)
    subgraphs: dict[str, str] = field(default_factory=dict)
    subgraph_directions: dict[str, str] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    edge_labels: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse(text: str) -> Flowchart:
    """Read the subset of Mermaid flowchart syntax the README uses, strictly (unknown lines are problems)."""
    chart = Flowchart()
    lines = [line.strip() for line in text.splitlines()]
    if lines and lines[0] == "---":  # front matter: the title only
        close = lines.index("---", 1)
        for line in lines[1:close]:
            key, _, value = line.partition(":")
            if key == "title":
                chart.title = value.strip().strip('"')
            else:
                chart.problems.append(f"front matter key {key!r}: only the title is expected")
        lines = lines[close + 1 :]
    open_subgraphs: list[str] = []
    for line in lines:
        if not line or line.startswith("%%"):
            continue
        if header := re.fullmatch(r"(?:flowchart|graph) (TB|TD|BT|LR|RL)", line):
            chart.direction = header.group(1)
        elif sub := SUBGRAPH.match(line):
            chart.subgraphs[sub["id"]] = sub["label"] or sub["id"]
            open_subgraphs.append(sub["id"])
        elif line == "end":
            if not open_subgraphs:
                chart.problems.append("'end' without a subgraph")
            else:
                open_subgraphs.pop()
        elif direction := re.fullmatch(r"direction (TB|TD|BT|LR|RL)", line):
            if open_subgraphs:
                chart.subgraph_directions[open_subgraphs[-1]] = direction.group(1)
            else:
                chart.problems.append(f"{line!r} outside a subgraph")
        elif node := NODE.match(line):
            if SHAPES.get(node["open"]) != node["close"]:
                chart.problems.append(f"unbalanced node shape: {line!r}")
            if node["id"] in chart.nodes:
                chart.problems.append(f"node {node['id']} defined twice")
            chart.nodes[node["id"]] = node["label"]
        elif EDGE.match(line):
            chart.edge_labels += EDGE_LABEL.findall(line)
            ids = re.split(r"\s*(?:-->|-\.->|==>|---|-\.-)\s*", EDGE_LABEL.sub("", line))
            chart.edges += list(pairwise(ids))
        else:
            chart.problems.append(f"unrecognised line: {line!r}")
    if open_subgraphs:
        chart.problems.append(f"subgraphs never closed: {open_subgraphs}")
    return chart


def label_lines(label: str) -> list[str]:
    return re.split(r"<br\s*/?>", label)


BLOCKS = mermaid_blocks(README.read_text())


def test_the_architecture_is_several_small_diagrams() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("text", BLOCKS, ids=lambda t: parse(t).title or "untitled")
class TestEachDiagram:
    def test_is_read_without_problems(self, text: str) -> None:
        assert parse(text).problems == []

    def test_has_a_title(self, text: str) -> None:
        assert parse(text).title

    def test_runs_top_down(self, text: str) -> None:
        chart = parse(text)
        # a subgraph without its own direction is laid out left to right when nothing outside links into it
        assert (chart.direction, chart.subgraph_directions) == ("TB", dict.fromkeys(chart.subgraphs, "TB"))

    def test_every_edge_joins_defined_nodes(self, text: str) -> None:
        chart = parse(text)
        defined = chart.nodes.keys() | chart.subgraphs.keys()
        assert chart.edges and {end for edge in chart.edges for end in edge} - defined == set()

    def test_every_node_is_connected(self, text: str) -> None:
        chart = parse(text)
        connected = {end for edge in chart.edges for end in edge}
        assert set(chart.nodes) - connected == set()

    def test_has_few_nodes(self, text: str) -> None:
        assert len(parse(text).nodes) <= MAX_NODES

    def test_labels_are_short_enough_not_to_wrap(self, text: str) -> None:
        chart = parse(text)
        labels = [*chart.nodes.values(), *chart.edge_labels]  # subgraph titles span their box: not wrapped
        too_long = [line for label in labels for line in label_lines(label) if len(line) > MAX_LABEL_LINE]
        too_many = [label for label in labels if len(label_lines(label)) > MAX_LABEL_LINES]
        assert (too_long, too_many) == ([], [])


def test_the_structural_reader_refuses_what_it_does_not_know() -> None:
    chart = parse('flowchart TB\n  A["a"] --> B\n  subgraph S\n  A & B --> C\n')
    assert chart.problems == [
        "unrecognised line: 'A[\"a\"] --> B'",
        "unrecognised line: 'A & B --> C'",
        "subgraphs never closed: ['S']",
    ]


# --- Mermaid's own parser --------------------------------------------------------------------------------

PARSE_SCRIPT = """
import { JSDOM } from "jsdom";
globalThis.window = new JSDOM("").window;  // Mermaid sanitises labels with DOMPurify, which needs a window
const { default: mermaid } = await import("mermaid");
const texts = JSON.parse(await new Promise((done) => {
  let input = "";
  process.stdin.on("data", (chunk) => (input += chunk));
  process.stdin.on("end", () => done(input));
}));
const results = [];
for (const text of texts) {
  try {
    results.push({ ok: true, type: (await mermaid.parse(text)).diagramType });
  } catch (error) {
    results.push({ ok: false, error: String(error.message ?? error).split("\\n")[0] });
  }
}
console.log(JSON.stringify(results));
"""


def mermaid_parse(texts: list[str]) -> list[dict[str, object]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: Mermaid's parser runs on it")
    if not all((MERMAID_PREFIX / "node_modules" / p / "package.json").exists() for p in ("mermaid", "jsdom")):
        pytest.skip(f"mermaid is not installed under {MERMAID_PREFIX}: {MERMAID_INSTALL}")
    result = subprocess.run(
        [node, "--input-type=module", "-e", PARSE_SCRIPT],
        cwd=MERMAID_PREFIX,  # where the bare import "mermaid" resolves
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mermaid_parses_every_diagram_and_refuses_a_broken_one() -> None:
    broken = "flowchart TB\n  A --> \n"
    *diagrams, refused = mermaid_parse([*BLOCKS, broken])
    assert diagrams == [{"ok": True, "type": "flowchart-v2"}] * len(BLOCKS)
    assert refused["ok"] is False and str(refused["error"]).startswith("Parse error on line")
