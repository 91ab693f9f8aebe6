"""A definition drawn as a graph: nested groups for Parallel and Map, labelled Choice edges,
dashed Catch edges, a run's outcomes as classes; the same text every time."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness import graphs

DEFINITION = {
    "StartAt": "Check",
    "States": {
        "Check": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.rows", "NumericGreaterThanEquals": 100, "Next": "Fan"},
                {"And": [{"Variable": "$.kind", "StringEquals": "small"},
                         {"Not": {"Variable": "$.skip", "BooleanEquals": True}}], "Next": "Each"},
            ],
            "Default": "Nothing",
        },
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Train", "States": {"Train": {
                    "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                    "Parameters": {}, "End": True}}},
                {"StartAt": "Profile", "States": {"Profile": {
                    "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:profile",
                    "End": True}}},
            ],
            "Catch": [{"ErrorEquals": ["States.TaskFailed", "ValueError"], "Next": "Failed"}],
            "Next": "Done",
        },
        "Each": {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "One", "States": {"One": {"Type": "Pass", "End": True}}},
            "Next": "Done",
        },
        "Nothing": {"Type": "Succeed"},
        "Done": {"Type": "Pass", "End": True},
        "Failed": {"Type": "Fail", "Error": "Broken"},
    },
}  # fmt: skip


def edges(graph, kind=None):
    names = {node.id: node.name for node in graph.nodes.values()}
    return [(names[e.source], names[e.target], e.label) for e in graph.edges if kind in (None, e.kind)]


def test_every_state_is_a_node_and_parallel_and_map_are_nested_groups_joined_after():
    graph = graphs.graph_of(DEFINITION)
    states = {n.name for n in graph.nodes.values() if n.kind not in ("start", "end", "join")}
    assert states == {"Check", "Fan", "Train", "Profile", "Each", "One", "Nothing", "Done", "Failed"}
    assert [g.label for g in graph.top.groups] == ["Fan: branch 1", "Fan: branch 2", "Each: each item"]
    assert [graph.nodes[n].name for n in graph.top.groups[0].nodes] == ["Train"]
    assert ("Fan", "Train", "") in edges(graph, "branch") and ("Fan", "Profile", "") in edges(graph, "branch")
    # each branch's end leads to the join, the join on to Next
    assert ("Train", "Fan done", "") in edges(graph, "next") and ("Fan done", "Done", "") in edges(
        graph, "next"
    )
    assert graph.node_of("Profile").detail == "profile"  # a function by its name
    assert graph.node_of("Train").detail == "sagemaker:createTrainingJob.sync"


def test_choice_rules_are_labelled_by_their_condition_and_catches_by_their_errors():
    graph = graphs.graph_of(DEFINITION)
    assert edges(graph, "choice") == [
        ("Check", "Fan", "$.rows >= 100"),
        ("Check", "Each", '($.kind == "small") and (not ($.skip == true))'),
    ]
    assert edges(graph, "default") == [("Check", "Nothing", "Default")]
    assert edges(graph, "catch") == [("Fan", "Failed", "States.TaskFailed, ValueError")]


def test_mermaid_draws_groups_dashed_catches_and_the_runs_outcomes():
    outcomes = {"Check": "SUCCEEDED", "Fan": "FAILED", "Train": "SUCCEEDED", "Profile": "FAILED"}
    text = graphs.to_mermaid(graphs.graph_of(DEFINITION), outcomes)
    assert text.startswith("flowchart TD\n")
    assert re.search(r'subgraph g\d+\["Fan: branch 1"\]', text)
    assert re.search(r'n\d+ -\. "States\.TaskFailed, ValueError" \.-> n\d+', text)
    assert '-- "$.rows #gt;= 100" -->' in text  # quotes and angle brackets escaped
    node = {name: node_id for node_id, name in re.findall(r'(n\d+)[\[{]"(\w+)<br/>', text)}
    assert f"class {node['Fan']} failed" in text and f"class {node['Check']} succeeded" in text
    assert f"class {node['Done']} " not in text  # not run: no class
    assert graphs.to_mermaid(graphs.graph_of(DEFINITION), outcomes) == text  # deterministic


def test_dot_is_valid_graphviz_with_clusters_and_is_drawn_as_svg():
    text = graphs.to_dot(graphs.graph_of(DEFINITION), {"Fan": "FAILED"})
    assert text.count("subgraph cluster_") == 3 and "style=dashed" in text
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (scripts/setup.sh installs it)")
    svg = graphs.rendered(text, "svg").decode()
    assert svg.lstrip().startswith("<?xml") and "Fan: branch 1" in svg and "#f8d7da" in svg
    assert subprocess.run(["dot", "-Tcanon"], input=text.encode(), capture_output=True).returncode == 0


def test_a_definition_naming_a_state_it_lacks_is_refused_saying_where():
    broken = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}
    with pytest.raises(graphs.DefinitionError, match="A: names a state 'Nowhere' that is not in its scope"):
        graphs.graph_of(broken)
    with pytest.raises(graphs.DefinitionError, match="StartAt"):
        graphs.graph_of({"StartAt": "X", "States": {}})


def test_the_graph_command_draws_a_projects_pipeline_and_a_runs_outcomes(tmp_path, capsys):
    from harness import cli, config, records

    project = tmp_path / "churn"
    assert cli.main(["init", str(project)]) == 0
    capsys.readouterr()

    assert cli.main(["graph", "churn", "--project", str(project)]) == 0
    drawn = capsys.readouterr().out
    assert drawn.startswith("flowchart TD\n") and "classDef succeeded" in drawn and "\n  class " not in drawn

    settings = config.load("local", [], project)
    first = next(line.split('["')[1].split("<br/>")[0] for line in drawn.splitlines() if '["' in line)
    run = records.RunRecord(
        run_id="churn-1", pipeline="churn", env="local", target="local", status="FAILED",
        started_at="2026-01-01T00:00:00+00:00", prefix="s3://b/runs/churn-1", project={}, inputs={},
        code={}, images={}, parameters={}, definition_sha256="x", state_machine_arn="arn",
        steps=[{"name": first, "status": "FAILED", "started": "2026-01-01T00:00:00+00:00"}],
    )  # fmt: skip
    records.save(run, settings.records_dir)
    out = tmp_path / "graph.svg"
    assert cli.main(["graph", "churn", "--run", "churn-1", "--format", "dot", "-o", str(out),
                     "--project", str(project)]) == 0  # fmt: skip
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert 'fillcolor="#f8d7da"' in out.read_text()  # the failed state drawn failed

    assert cli.main(["graph", "nope", "--project", str(project)]) == 2
    assert "unknown pipeline 'nope': choose from churn" in capsys.readouterr().err
    assert cli.main(["graph", "churn", "--run", "churn-9", "--project", str(project)]) == 1
    assert capsys.readouterr().err.strip() == "error: no run churn-9 recorded for environment local"
    assert cli.main(["graph", "churn", "--format", "png", "--project", str(project)]) == 2
    assert "--format png writes a file: give -o FILE" in capsys.readouterr().err
