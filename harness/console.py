"""The web console: the project's pipelines and runs in a browser, read-only.

A WSGI application (werkzeug) over what the harness already keeps for the project's target:
the pipelines' definitions as built (each drawn by harness.graphs, laid out by Graphviz), the
run records (status, who started them and when, each step's outcome and timing, inputs, code,
images, outputs, metrics, what the step cache did, fidelity findings). Pages and a JSON API
beside them (`/api/...`), every asset served by the package itself: it works with no network.
An unknown pipeline or run is a page (or a JSON error) saying so in one line, with 404.
"""

from __future__ import annotations

import html
import json

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from harness import build, graphs, lineage, records
from harness.config import Config
from harness.resources import CONSOLE

REFRESH_S = 3  # a running run's page is read again this often
STATUS_CLASS = {"SUCCEEDED": "ok", "FAILED": "bad", "TIMED_OUT": "bad", "ABORTED": "bad", "LOST": "bad",
                "RUNNING": "live", "INTERRUPTED": "live"}  # fmt: skip


class Console:
    def __init__(self, settings: Config):
        self.settings = settings
        self.urls = Map(
            [
                Rule("/", endpoint="pipelines"),
                Rule("/pipelines/<name>", endpoint="pipeline"),
                Rule("/pipelines/<name>/graph.svg", endpoint="graph"),
                Rule("/pipelines/<name>/compare", endpoint="compare"),
                Rule("/runs/<run_id>", endpoint="run"),
                Rule("/runs/<run_id>/graph.svg", endpoint="run_graph"),
                Rule("/api/pipelines", endpoint="api_pipelines"),
                Rule("/api/runs", endpoint="api_runs"),
                Rule("/api/runs/<run_id>", endpoint="api_run"),
                Rule("/assets/<name>", endpoint="asset"),
            ]
        )

    def __call__(self, environ, start_response):
        request = Request(environ)
        adapter = self.urls.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
            response = getattr(self, f"_{endpoint}")(request, **values)
        except NotFound as ex:
            response = self._not_found(request, ex.description)
        except HTTPException as ex:
            response = ex.get_response(environ)
        return response(environ, start_response)

    # -- data ---------------------------------------------------------------------------
    def _pipeline_named(self, name: str):
        pipeline = next((p for p in self.settings.pipelines if p.name == name), None)
        if pipeline is None:
            known = ", ".join(p.name for p in self.settings.pipelines)
            raise NotFound(f"no pipeline {name!r} in this project (its pipelines: {known})")
        return pipeline

    def _run_named(self, run_id: str) -> records.RunRecord:
        record = records.find(self.settings.records_dir, run_id)
        if record is None:
            raise NotFound(f"no run {run_id!r} recorded for environment {self.settings.env}")
        return record

    def _runs(self) -> list[records.RunRecord]:
        return list(reversed(records.load_all(self.settings.records_dir)))  # newest first

    def _svg(self, name: str, outcomes: dict[str, str] | None) -> Response:
        drawn = graphs.graph_of(build.checked_definition(self.settings, self._pipeline_named(name)))
        try:
            svg = graphs.rendered(graphs.to_dot(drawn, outcomes), "svg")
        except graphs.GraphvizMissing as ex:
            return Response(str(ex), status=501, mimetype="text/plain")
        return Response(svg, mimetype="image/svg+xml")

    # -- JSON ---------------------------------------------------------------------------
    def _api_pipelines(self, request):
        listed = [{"name": p.name, "description": p.description, "prefix": p.prefix}
                  for p in self.settings.pipelines]  # fmt: skip
        return _json({"env": self.settings.env, "target": self.settings.target, "pipelines": listed})

    def _api_runs(self, request):
        wanted = request.args.get("pipeline")
        runs = [_summary(r) for r in self._runs() if wanted in (None, r.pipeline)]
        return _json({"runs": runs})

    def _api_run(self, request, run_id: str):
        return _json(json.loads(self._run_named(run_id).to_json()))

    # -- pages --------------------------------------------------------------------------
    def _pipelines(self, request):
        runs = self._runs()
        rows = []
        for pipeline in self.settings.pipelines:
            latest = next((r for r in runs if r.pipeline == pipeline.name), None)
            rows.append(
                f"<tr><td><a href='/pipelines/{_q(pipeline.name)}'>{_e(pipeline.name)}</a></td>"
                f"<td>{_e(pipeline.description)}</td>"
                f"<td>{_status(latest.status) if latest else 'no runs'}</td></tr>"
            )
        body = (
            "<h1>Pipelines</h1><table><tr><th>pipeline</th><th>what it does</th><th>latest run</th></tr>"
            + "".join(rows) + "</table>" + _runs_table(runs, "All runs")
        )  # fmt: skip
        return self._page("Pipelines", body)

    def _pipeline(self, request, name: str):
        pipeline = self._pipeline_named(name)
        runs = [r for r in self._runs() if r.pipeline == name]
        body = (
            f"<h1>{_e(name)}</h1><p>{_e(pipeline.description)}</p>"
            f"<figure class='graph'><img alt='the {_e(name)} state machine' "
            f"src='/pipelines/{_q(name)}/graph.svg'></figure>"
            f"<p><a href='/pipelines/{_q(name)}/compare'>Compare the metrics of its runs</a></p>"
            + _runs_table(runs, "Runs")
        )
        return self._page(name, body)

    def _compare(self, request, name: str):
        """The metrics of the pipeline's runs side by side, one row a run, one column a metric;
        `?run=ID` (repeatable) narrows it to those runs."""
        self._pipeline_named(name)
        wanted = request.args.getlist("run")
        runs = [r for r in self._runs() if r.pipeline == name and (not wanted or r.run_id in wanted)]
        metrics = sorted({metric for r in runs for metric in r.metrics})
        if not runs or not metrics:
            return self._page(f"Compare {name}", f"<h1>Compare {_e(name)}</h1><p>no run recorded metrics</p>")
        head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
        rows = "".join(
            f"<tr class='compared'><td><a href='/runs/{_q(r.run_id)}'>{_e(r.run_id)}</a></td>"
            f"<td>{_status(r.status)}</td>"
            + "".join(
                f"<td class='metric'>{_e(_shown(r.metrics[m]) if m in r.metrics else '')}</td>"
                for m in metrics
            )
            + "</tr>"
            for r in runs
        )
        body = f"<h1>Compare {_e(name)}</h1><table><tr><th>run</th><th>status</th>{head}</tr>{rows}</table>"
        return self._page(f"Compare {name}", body)

    def _graph(self, request, name: str):
        return self._svg(name, None)

    def _run_graph(self, request, run_id: str):
        record = self._run_named(run_id)
        return self._svg(record.pipeline, {s["name"]: s["status"] for s in record.steps})

    def _run(self, request, run_id: str):
        record = self._run_named(run_id)
        steps = "".join(
            f"<tr class='step'><td>{_e(s['name'])}</td><td>{_status(s['status'])}</td>"
            f"<td>{_e(s.get('started') or '')}</td><td>{_e(_seconds(s.get('seconds')))}</td></tr>"
            for s in record.steps
        )
        failure = (
            f"<p class='error'>{_e(record.error or '')}: {_e(record.cause or '')}</p>" if record.error else ""
        )
        body = (
            f"<h1>Run {_e(record.run_id)}</h1>"
            f"<p>{_status(record.status)} · pipeline <a href='/pipelines/{_q(record.pipeline)}'>"
            f"{_e(record.pipeline)}</a> · started {_e(record.started_at)}"
            f"{' · ended ' + _e(record.ended_at) if record.ended_at else ''}</p>{failure}"
            "<figure class='graph'><img alt='the run, state by state' "
            f"src='/runs/{_q(run_id)}/graph.svg'></figure>"
            "<h2>Steps</h2><table><tr><th>state</th><th>outcome</th><th>started</th><th>took</th></tr>"
            f"{steps}</table>"
            + _section("Metrics", record.metrics)
            + _section("Outputs", record.outputs)
            + _section("Inputs", record.inputs)
            + _section("Code", record.code)
            + _section("Images", record.images)
            + _section("Produced", record.produced)
            + self._lineage(record)
            + _rows("Step cache", record.cache, ("job", "outcome", "detail"))
            + _rows("Fidelity", record.fidelity, ("subject", "kind", "message"))
        )
        # a run still going: the page reads its record again every few seconds
        return self._page(f"Run {run_id}", body, refresh=record.status == "RUNNING")

    def _lineage(self, record: records.RunRecord) -> str:
        """What the run consumed (linked to the runs that made it) and which runs used what it
        produced: the lineage `mlharness lineage` prints, one step each way."""
        found = lineage.of(record.run_id, records.load_all(self.settings.records_dir))
        made = "".join(
            f"<li>the {_e(kind)} of <a href='/runs/{_q(producer)}'>{_e(producer)}</a></li>"
            for kind, producer in sorted(record.consumed.items())
        )
        used = "".join(
            f"<li class='used-by'>its {_e(kind)}: <a href='/runs/{_q(user.run_id)}'>{_e(user.run_id)}</a> "
            f"{_status(user.status)}</li>"
            for kind, user in found.used_by
        )
        return (f"<h2>Consumed</h2><ul>{made}</ul>" if made else "") + (
            f"<h2>Used by</h2><ul>{used}</ul>" if used else ""
        )

    def _asset(self, request, name: str):
        path = CONSOLE / name
        if name not in ("console.css",) or not path.is_file():
            raise NotFound(f"no asset {name!r}")
        return Response(path.read_bytes(), mimetype="text/css")

    def _not_found(self, request, message: str):
        if request.path.startswith("/api/"):
            return _json({"error": message}, status=404)
        return self._page("Not found", f"<h1>Not found</h1><p class='error'>{_e(message)}</p>", status=404)

    def _page(self, title: str, body: str, status: int = 200, refresh: bool = False) -> Response:
        where = f"{self.settings.project.name} · {self.settings.env} ({self.settings.target})"
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            + (f"<meta http-equiv='refresh' content='{REFRESH_S}'>" if refresh else "")
            + f"<title>{_e(title)} · mlharness</title>"
            "<link rel='stylesheet' href='/assets/console.css'></head>"
            f"<body><header><a href='/'>mlharness</a> <span>{_e(where)}</span></header>"
            f"<main>{body}</main></body></html>"
        )
        return Response(page, status=status, mimetype="text/html")


def _summary(record: records.RunRecord) -> dict:
    return {
        "run_id": record.run_id, "pipeline": record.pipeline, "status": record.status,
        "started_at": record.started_at, "ended_at": record.ended_at, "headline": record.headline,
        "error": record.error,
    }  # fmt: skip


def _runs_table(runs: list[records.RunRecord], title: str) -> str:
    if not runs:
        return f"<h2>{title}</h2><p>no runs recorded</p>"
    rows = "".join(
        f"<tr class='run'><td><a href='/runs/{_q(r.run_id)}'>{_e(r.run_id)}</a></td><td>{_e(r.pipeline)}</td>"
        f"<td>{_status(r.status)}</td><td>{_e(r.started_at)}</td><td>{_e(_took(r))}</td>"
        f"<td>{_e(r.headline if r.status == 'SUCCEEDED' else r.error or '')}</td></tr>"
        for r in runs
    )
    return (
        f"<h2>{title}</h2><table><tr><th>run</th><th>pipeline</th><th>status</th><th>started</th>"
        f"<th>took</th><th>headline</th></tr>{rows}</table>"
    )


def _took(record: records.RunRecord) -> str:
    """How long the run took, from its record's start and end; empty while it runs."""
    import datetime

    if not record.ended_at:
        return ""
    try:
        seconds = (
            datetime.datetime.fromisoformat(record.ended_at)
            - datetime.datetime.fromisoformat(record.started_at)
        ).total_seconds()
    except ValueError:
        return ""
    return _seconds(seconds)


def _section(title: str, values: dict) -> str:
    if not values:
        return ""
    rows = "".join(
        f"<tr><th>{_e(str(key))}</th><td><code>{_e(_shown(value))}</code></td></tr>"
        for key, value in sorted(values.items())
    )
    return f"<h2>{title}</h2><table class='pairs'>{rows}</table>"


def _rows(title: str, entries: list[dict], columns: tuple[str, ...]) -> str:
    if not entries:
        return ""
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(str(entry.get(c, '')))}</td>" for c in columns) + "</tr>"
        for entry in entries
    )
    return f"<h2>{title}</h2><table><tr>{head}</tr>{body}</table>"


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _status(status: str) -> str:
    return f"<span class='status {STATUS_CLASS.get(status, '')}'>{_e(status)}</span>"


def _seconds(seconds) -> str:
    return f"{seconds:.1f} s" if isinstance(seconds, int | float) else ""


def _json(document: dict, status: int = 200) -> Response:
    return Response(json.dumps(document, indent=2, default=str), status=status, mimetype="application/json")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
