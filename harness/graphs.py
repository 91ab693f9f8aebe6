"""A state machine definition as a graph, drawn as Mermaid or Graphviz DOT text.

One model (`graph_of`) for every drawing, so `mlharness graph` and anything else that draws a
pipeline draw the same thing:
- each state a node, labelled with its name and type (a Task also with its integration);
- `Next` edges plain, a Choice's rules labelled with their condition and its `Default` so
  labelled, `Catch` edges dashed and labelled with the errors they catch;
- a Parallel state's branches and a Map state's item processor as nested groups: the state
  leads into each, and each group's ends lead to the state's join, then on;
- a run's outcome per state (its record's steps) as the node's class: succeeded, failed,
  running, or not run.

Deterministic: the same definition (and outcomes) gives the same text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

FORMATS = ("mermaid", "dot", "svg", "png")
# A run record's step status -> the class its node is drawn with
OUTCOMES = {
    "SUCCEEDED": "succeeded",
    "RUNNING": "running",
    "FAILED": "failed",
    "TIMED_OUT": "failed",
    "ABORTED": "failed",
}
_COLOURS = {  # class -> (fill, stroke)
    "succeeded": ("#d4edda", "#2e7d32"),
    "failed": ("#f8d7da", "#c62828"),
    "running": ("#d6e9f8", "#1565c0"),
}
_COMPARISONS = {
    "Equals": "==", "GreaterThan": ">", "GreaterThanEquals": ">=", "LessThan": "<", "LessThanEquals": "<=",
}  # fmt: skip


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    kind: str  # the state's Type; "start", "end" or "join" for the drawing's own nodes
    detail: str = ""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # next, choice, default, catch, branch
    label: str = ""


@dataclass
class Group:
    id: str
    label: str
    nodes: list[str] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    top: Group = field(default_factory=lambda: Group("top", ""))

    def node_of(self, state: str) -> Node | None:
        return next((n for n in self.nodes.values() if n.name == state and n.kind not in _OWN), None)


_OWN = ("start", "end", "join")


class DefinitionError(ValueError):
    """The definition is not a state machine that can be drawn; the message says where."""


def graph_of(definition: dict) -> Graph:
    graph = Graph()
    start = _add(graph, graph.top, "start", "start")
    end = _add(graph, graph.top, "end", "end")
    first, _ = _machine(graph, graph.top, definition, "", end)
    graph.edges.insert(0, Edge(start, first, "next"))
    return graph


def _add(graph: Graph, group: Group, name: str, kind: str, detail: str = "") -> str:
    node_id = f"n{len(graph.nodes)}"
    graph.nodes[node_id] = Node(node_id, name, kind, detail)
    group.nodes.append(node_id)
    return node_id


def _machine(graph: Graph, group: Group, machine: dict, where: str, exit_to: str) -> tuple[str, list[str]]:
    """Add the states of a machine (the top one, a branch, an item processor) to `group`; their
    ends lead to `exit_to`. Returns the id of its StartAt state."""
    states = machine.get("States")
    if not isinstance(states, dict) or machine.get("StartAt") not in states:
        raise DefinitionError(f"{where or 'the definition'}: no States, or StartAt names none of them")
    ids = {name: _add(graph, group, name, str(state.get("Type", "?")), _detail(state))
           for name, state in states.items()}  # fmt: skip
    for name, state in states.items():
        here = out = ids[name]
        kind = state.get("Type")
        if kind in ("Parallel", "Map"):
            join = _add(graph, group, f"{name} done", "join")
            inner = state.get("Branches", []) if kind == "Parallel" else [_processor(state)]
            for index, branch in enumerate(inner):
                label = f"{name}: branch {index + 1}" if kind == "Parallel" else f"{name}: each item"
                nested = Group(f"g{len(graph.nodes)}", label)
                group.groups.append(nested)
                first, _ = _machine(graph, nested, branch, f"{where}{name}/", join)
                graph.edges.append(Edge(here, first, "branch"))
            out = join  # on from the join; a catch still leaves from the state
        _leave(graph, state, here, out, ids, exit_to, where + name)
    return ids[machine["StartAt"]], list(ids.values())


def _leave(
    graph: Graph, state: dict, here: str, out: str, ids: dict[str, str], exit_to: str, where: str
) -> None:
    def target(name) -> str:
        if name not in ids:
            raise DefinitionError(f"{where}: names a state {name!r} that is not in its scope")
        return ids[name]

    kind = state.get("Type")
    if kind == "Choice":
        for rule in state.get("Choices", []):
            graph.edges.append(Edge(out, target(rule.get("Next")), "choice", _condition(rule)))
        if "Default" in state:
            graph.edges.append(Edge(out, target(state["Default"]), "default", "Default"))
    elif kind in ("Succeed", "Fail") or state.get("End"):
        graph.edges.append(Edge(out, exit_to, "next"))
    elif "Next" in state:
        graph.edges.append(Edge(out, target(state["Next"]), "next"))
    for catcher in state.get("Catch", []):
        errors = ", ".join(catcher.get("ErrorEquals", []))
        graph.edges.append(Edge(here, target(catcher.get("Next")), "catch", errors))


def _processor(state: dict) -> dict:
    return state.get("ItemProcessor") or state.get("Iterator") or {}


def _detail(state: dict) -> str:
    resource = state.get("Resource", "")
    if not isinstance(resource, str) or not resource:
        return ""
    if resource.startswith("arn:aws:states:::"):
        return resource.removeprefix("arn:aws:states:::")
    return resource.rsplit(":", 1)[-1] if resource.startswith("arn:aws:lambda:") else resource


def _condition(rule: dict) -> str:
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"]).strip("{%} ")
    for combinator, word in (("And", " and "), ("Or", " or ")):
        if combinator in rule:
            return word.join(f"({_condition(inner)})" for inner in rule[combinator])
    if "Not" in rule:
        return f"not ({_condition(rule['Not'])})"
    variable = rule.get("Variable", "")
    for key, value in rule.items():
        if key in ("Variable", "Next", "Assign", "Output"):
            continue
        operator, path = key.removesuffix("Path"), key.endswith("Path")
        shown = value if path else json.dumps(value)
        for suffix, symbol in sorted(_COMPARISONS.items(), key=lambda item: -len(item[0])):  # longest first
            if operator.endswith(suffix) and operator != "StringMatches":
                return f"{variable} {symbol} {shown}"
        return f"{variable} {operator} {shown}"
    return "?"


# -- Mermaid --------------------------------------------------------------------------
def to_mermaid(graph: Graph, outcomes: dict[str, str] | None = None) -> str:
    lines = ["flowchart TD"]
    lines += _mermaid_group(graph, graph.top, "  ")
    for edge in graph.edges:
        label = _mermaid_text(edge.label)
        arrow = {"catch": f'-. "{label}" .->', "branch": "==>"}.get(
            edge.kind, f'-- "{label}" -->' if label else "-->"
        )
        lines.append(f"  {edge.source} {arrow} {edge.target}")
    for name, (fill, stroke) in _COLOURS.items():
        lines.append(f"  classDef {name} fill:{fill},stroke:{stroke},stroke-width:2px")
    for node_id, cls in sorted(_classes(graph, outcomes).items(), key=lambda item: int(item[0][1:])):
        lines.append(f"  class {node_id} {cls}")
    return "\n".join(lines) + "\n"


def _mermaid_group(graph: Graph, group: Group, indent: str) -> list[str]:
    lines = []
    for node_id in group.nodes:
        node = graph.nodes[node_id]
        lines.append(f"{indent}{node_id}{_mermaid_shape(node)}")
    for nested in group.groups:
        lines.append(f'{indent}subgraph {nested.id}["{_mermaid_text(nested.label)}"]')
        lines += _mermaid_group(graph, nested, indent + "  ")
        lines.append(f"{indent}end")
    return lines


def _mermaid_shape(node: Node) -> str:
    if node.kind in ("start", "end"):
        return f"(({node.kind}))"
    if node.kind == "join":
        return "(( ))"
    text = _mermaid_text(node.name) + f"<br/><small>{_mermaid_text(node.detail or node.kind)}</small>"
    return f'{{"{text}"}}' if node.kind == "Choice" else f'["{text}"]'


def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


# -- Graphviz DOT ----------------------------------------------------------------------
def to_dot(graph: Graph, outcomes: dict[str, str] | None = None) -> str:
    classes = _classes(graph, outcomes)
    lines = [
        "digraph pipeline {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11];',
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    lines += _dot_group(graph, graph.top, "  ", classes)
    for edge in graph.edges:
        attributes = []
        if edge.label:
            attributes.append(f"label={_dot_text(edge.label)}")
        if edge.kind == "catch":
            attributes += ["style=dashed", 'color="#c62828"']
        elif edge.kind == "branch":
            attributes.append("penwidth=2")
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_group(graph: Graph, group: Group, indent: str, classes: dict[str, str]) -> list[str]:
    lines = []
    for node_id in group.nodes:
        node = graph.nodes[node_id]
        attributes = _dot_shape(node)
        if node_id in classes:
            fill, stroke = _COLOURS[classes[node_id]]
            attributes += [f'fillcolor="{fill}"', f'color="{stroke}"', "penwidth=2"]
        lines.append(f"{indent}{node_id} [{', '.join(attributes)}];")
    for nested in group.groups:
        lines.append(f"{indent}subgraph cluster_{nested.id} {{")
        lines.append(f'{indent}  label={_dot_text(nested.label)}; style="rounded,dashed"; color="#888888";')
        lines += _dot_group(graph, nested, indent + "  ", classes)
        lines.append(f"{indent}}}")
    return lines


def _dot_shape(node: Node) -> list[str]:
    if node.kind in ("start", "end"):
        return ["shape=circle", f"label={_dot_text(node.kind)}", 'fillcolor="#eeeeee"']
    if node.kind == "join":
        return ["shape=point", "width=0.12"]
    label = f"{node.name}\n{node.detail or node.kind}"
    shape = "diamond" if node.kind == "Choice" else "box"
    return [f"shape={shape}", f"label={_dot_text(label)}"]


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _classes(graph: Graph, outcomes: dict[str, str] | None) -> dict[str, str]:
    """node id -> the class of its state's outcome in a run (only states with one)."""
    found = {}
    for state, status in (outcomes or {}).items():
        node = graph.node_of(state)
        if node is not None and status in OUTCOMES:
            found[node.id] = OUTCOMES[status]
    return found


class GraphvizMissing(RuntimeError):
    """SVG and PNG are laid out by Graphviz, which is not installed."""


def rendered(dot_text: str, fmt: str) -> bytes:
    """The DOT graph laid out and drawn by Graphviz's `dot` as svg or png."""
    import shutil
    import subprocess

    executable = shutil.which("dot")
    if executable is None:
        raise GraphvizMissing(
            f"--format {fmt} needs Graphviz's dot (apt-get install graphviz); "
            "--format mermaid or dot needs nothing"
        )
    drawn = subprocess.run(
        [executable, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=60, check=False
    )
    if drawn.returncode != 0:
        raise RuntimeError(
            f"Graphviz could not draw the graph: {drawn.stderr.decode(errors='replace').strip()}"
        )
    return drawn.stdout
