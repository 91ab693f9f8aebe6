"""`mlharness` (or `python -m harness`): parse the command line, call the core, print what it
returns and ask what it needs asked. The core returns and raises; only this module prints.

Every command takes the target the same way (--target local, or --target aws ENV) and the
project the same way (--project DIR, else the folder holding mlharness.yaml at or above the
working directory).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from harness.emulator import server as emulator_server

    parser = argparse.ArgumentParser(
        prog="mlharness",
        description="Build, run and deploy Step Functions + SageMaker pipelines, locally or on AWS.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=bool(os.environ.get("MLHARNESS_DEBUG")),
        help="on an error, print its whole traceback after its one line (also MLHARNESS_DEBUG=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser(
        "init", help="write a new project (mlharness.yaml, a pipeline, its image, tests)"
    )
    init.add_argument("directory", nargs="?", default=".", help="an empty or new folder (default: here)")
    init.add_argument("--name", help="the project's name (default: the folder's name)")
    init.set_defaults(handler=_init)

    build = commands.add_parser(
        "build", help="write the state machine definitions and template under .mlharness/build/ENV/"
    )
    build.add_argument(
        "--env", default="local", help="the environment to build for (mlharness.yaml; default local)"
    )
    _add_overrides(build)
    build.set_defaults(handler=_build)

    run = commands.add_parser("run", help="deploy and run the pipelines, show progress, print the results")
    _add_target(run)
    _add_pipeline(run, "which pipeline (repeatable; 'all' for every one; default: those that run by default)")
    run.add_argument(
        "--from-run",
        metavar="RUN_ID",
        help="take what the pipelines consume (a model) from this recorded run (default: the latest)",
    )
    run.add_argument("--detach", action="store_true", help="return once the execution has started")
    run.add_argument(
        "--as-scheduled",
        action="store_true",
        help="start the pipeline as its deployed schedule would (with the rule's own input)",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue a failed run: redrive its execution, or (code changed) run again from the cache",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="run every job, none served from the local AWS's step cache (as --set cache.enabled=false)",
    )
    run.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="give a named input (a file or folder) for this run (repeatable)",
    )
    run.add_argument(
        "--strict-fidelity",
        action="store_true",
        help="fail (exit 1) when the fidelity report has a call AWS would deny or an operation the local "
        "AWS refused as unsupported (for CI)",
    )
    _add_overrides(run)
    run.set_defaults(handler=_run)

    deploy = commands.add_parser(
        "deploy", help="build, push the image, package the code and deploy the stack"
    )
    _add_target(deploy)
    _add_overrides(deploy)
    deploy.set_defaults(handler=_deploy)

    destroy = commands.add_parser("destroy", help="delete the stack (the bucket's data is kept)")
    _add_target(destroy)
    destroy.add_argument(
        "--delete-data", action="store_true", help="also empty and delete the artifact bucket"
    )
    _add_overrides(destroy)
    destroy.set_defaults(handler=_destroy)

    logs = commands.add_parser("logs", help="the CloudWatch logs of a run's jobs")
    _add_target(logs)
    logs.add_argument("--run", help="the run id (default: the latest run)")
    _add_overrides(logs)
    logs.set_defaults(handler=_logs)

    status = commands.add_parser(
        "status", help="list runs with their status and headline; the deployed schedules and endpoints"
    )
    _add_target(status)
    _add_pipeline(status, "only this pipeline's runs (repeatable; default all)")
    _add_overrides(status)
    status.set_defaults(handler=_status)

    listing = commands.add_parser("pipelines", help="list the registered pipelines and what they declare")
    listing.add_argument("--env", default="local", help="the environment to read (default local)")
    _add_overrides(listing)
    listing.set_defaults(handler=_pipelines)

    from harness import graphs  # its formats; it imports nothing heavy

    graph = commands.add_parser(
        "graph", help="draw a pipeline's state machine (Mermaid, DOT, SVG, PNG), with a run's outcomes"
    )
    graph.add_argument("pipeline", help="the pipeline to draw")
    graph.add_argument("--run", help="colour each state by how it ended in this run (a run id of the target)")
    graph.add_argument("--format", choices=graphs.FORMATS, default="mermaid", help="default mermaid")
    graph.add_argument("-o", "--output", type=Path, help="write it to FILE (default: standard output)")
    _add_target(graph)
    _add_overrides(graph)
    graph.set_defaults(handler=_graph)

    lineage = commands.add_parser(
        "lineage", help="what made a run or an artifact (data, code, images, runs) and what used it"
    )
    lineage.add_argument("name", metavar="RUN_ID|URI", help="a run id, or an artifact's URI (a model's)")
    _add_target(lineage)
    _add_overrides(lineage)
    lineage.set_defaults(handler=_lineage)

    console = commands.add_parser("console", help="serve the web console (pipelines, runs) on loopback")
    console.add_argument(
        "--port", type=int, default=CONSOLE_PORT, help=f"default {CONSOLE_PORT}; 0: any free port"
    )
    console.add_argument("--open", action="store_true", help="open it in the browser")
    _add_target(console)
    _add_overrides(console)
    console.set_defaults(handler=_console)

    cache = commands.add_parser("cache", help="show or empty the local AWS's step cache")
    cache.add_argument("action", choices=("list", "clear"), help="list its entries, or remove them all")
    cache.add_argument("--env", default="local", help="the environment to read (default local)")
    _add_overrides(cache)
    cache.set_defaults(handler=_cache)

    emulator = commands.add_parser("emulator", help="run the local AWS in the foreground")
    emulator_server.build_parser(emulator)
    emulator.set_defaults(handler=emulator_server.run)
    for name, command in commands.choices.items():
        if name not in ("init", "emulator"):
            command.add_argument(
                "--project",
                metavar="DIR",
                help="the project's folder (default: the one holding mlharness.yaml, here or above)",
            )
    return parser


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        nargs="+",
        metavar=("TARGET", "ENV"),
        default=["local"],
        help="'local' (default), or 'aws ENV' with ENV an environment of mlharness.yaml",
    )
    parser.add_argument(
        "--yes", action="store_true", help="do not ask before changing a confirmed environment"
    )


def _add_pipeline(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--pipeline", action="append", metavar="NAME", help=help_text)


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting, e.g. --set settings.training.threshold=0.8 (repeatable)",
    )  # fmt: skip


def _environment(args: argparse.Namespace) -> str:
    target = args.target
    if target[0] == "local" and len(target) == 1:
        return "local"
    if target[0] == "aws" and len(target) == 2:
        if target[1] == "local":
            raise _UsageError("'local' is the local target's environment: use --target local")
        return target[1]
    if target[0] == "aws":
        raise _UsageError("--target aws needs an environment name: --target aws dev")
    raise _UsageError(f"unknown target {' '.join(target)!r}: use --target local or --target aws ENV")


CONSOLE_PORT = 4580  # the console's own, beside the local AWS's 4566


class _UsageError(ValueError):
    pass


def _load(args: argparse.Namespace, env: str | None = None, overrides: list[str] | None = None, inputs=None):
    """The configuration of the environment the command names, in the project it names."""
    from harness import config

    if env is None:
        env = _environment(args)
        target = args.target[0]
    else:
        target = None
    overrides = args.overrides if overrides is None else overrides
    return config.load(env, overrides, args.project, target=target, inputs=inputs)


def _init(args: argparse.Namespace) -> int:
    from harness import scaffold

    written = scaffold.init(args.directory, args.name)
    for path in written.files:
        print(f"wrote {path.relative_to(written.root)}")
    print(f"project {written.name} in {written.root}: `cd {args.directory} && mlharness run --target local`, "
          "then `pytest`")  # fmt: skip
    return 0


def _build(args: argparse.Namespace) -> int:
    from harness import build

    settings = _load(args, env=args.env)
    folder = build.build(settings)
    for path in sorted(folder.iterdir()):
        if not path.name.startswith("."):
            print(settings.project.relative(path))
    return 0


def _run(args: argparse.Namespace) -> int:
    from harness import runs, targets

    overrides = args.overrides + (["cache.enabled=false"] if args.no_cache else [])
    settings = _load(args, overrides=overrides, inputs=dict(_named_input(given) for given in args.inputs))
    pipelines = _pipelines_named(settings, args.pipeline)
    target = targets.make_target(settings, _report, assume_yes=args.yes, ask=_ask)
    fail = lambda line: print(f"error: {line}", file=sys.stderr, flush=True)  # noqa: E731
    if args.resume:
        if args.pipeline or args.from_run or args.detach or args.as_scheduled:
            raise _UsageError("--resume continues one recorded run: it takes no --pipeline, --from-run, "
                              "--detach or --as-scheduled")  # fmt: skip
        return runs.resume(
            settings, target, args.resume, _report, ask=_ask, fail=fail, strict_fidelity=args.strict_fidelity
        )
    return runs.run(
        settings,
        target,
        pipelines,
        args.from_run,
        _report,
        detach=args.detach,
        as_scheduled=args.as_scheduled,
        ask=_ask,
        fail=fail,
        strict_fidelity=args.strict_fidelity,
    )


def _named_input(given: str) -> tuple[str, Path]:
    """--input NAME=PATH, the path taken from the working directory (not the project's)."""
    name, sep, path = given.partition("=")
    if not sep or not name or not path:
        raise _UsageError(f"--input {given!r}: expected NAME=PATH, e.g. --input customers=data/customers.csv")
    return name, Path(path).expanduser().resolve()


def _pipelines_named(settings, names: list[str] | None) -> list[str] | None:
    """The --pipeline values, each a registered pipeline or 'all' (a usage error otherwise)."""
    known = settings.pipeline_names()
    for name in names or []:
        if name != "all" and name not in known:
            raise _UsageError(f"unknown pipeline {name!r}: choose from {', '.join(known)}, all")
    return names


def _deploy(args: argparse.Namespace) -> int:
    from harness import release, targets

    settings = _load(args)
    with targets.make_target(settings, _report, assume_yes=args.yes, ask=_ask) as target:
        released = release.release(target.resolve(settings), target, _report)
    for name, arn in released.state_machines.items():
        print(f"{name}: {arn}")
    return 0


def _destroy(args: argparse.Namespace) -> int:
    from harness import release, targets

    settings = _load(args)
    with targets.make_target(settings, _report, assume_yes=args.yes, ask=_ask) as target:
        release.destroy(target.resolve(settings), target, args.delete_data, _report)
    return 0


def _logs(args: argparse.Namespace) -> int:
    from harness import execute, records, targets
    from harness.errors import HarnessError

    settings = _load(args)
    known = records.load_all(settings.records_dir)
    run_id = args.run or (known[-1].run_id if known else None)
    if run_id is None:
        raise HarnessError(f"no runs recorded for environment {settings.env}")
    with targets.make_target(settings, _report, assume_yes=args.yes) as target:
        found = execute.run_logs(target.clients().client("logs"), run_id)
    if not found:
        print(f"no job logs for run {run_id}")
    for stream, lines in found.items():
        print(f"== {stream}")
        for line in lines:
            print(line)
    return 0


def _status(args: argparse.Namespace) -> int:
    from harness import records, runs

    settings = _load(args)
    selected = runs.select(settings, _pipelines_named(settings, args.pipeline) or ["all"])
    deployed_lines = _reconcile_and_read_deployed(settings, selected)  # records first brought up to date
    names = {p.name for p in selected}
    shown = [r for r in records.load_all(settings.records_dir) if r.pipeline in names]
    if not shown:
        print(f"no runs recorded for environment {settings.env}")
    else:
        print(f"{'run':34} {'status':11} {'started':26} headline")
    for record in shown:
        key = record.headline if record.status == "SUCCEEDED" else (record.error or "")
        print(f"{record.run_id:34} {record.status:11} {record.started_at:26} {key}")
    for line in deployed_lines:
        print(line)
    return 0


def _graph(args: argparse.Namespace) -> int:
    from harness import build, graphs, records
    from harness.errors import HarnessError
    from harness.paths import write_atomically

    settings = _load(args)
    pipeline = next((p for p in settings.pipelines if p.name == args.pipeline), None)
    if pipeline is None:
        known = ", ".join(settings.pipeline_names())
        raise _UsageError(f"unknown pipeline {args.pipeline!r}: choose from {known}")
    if args.format == "png" and args.output is None:
        raise _UsageError("--format png writes a file: give -o FILE")
    outcomes = None
    if args.run:
        record = records.find(settings.records_dir, args.run)
        if record is None:
            raise HarnessError(f"no run {args.run} recorded for environment {settings.env}")
        if record.pipeline != pipeline.name:
            raise HarnessError(f"run {args.run} is a run of {record.pipeline}, not of {pipeline.name}")
        outcomes = {step["name"]: step["status"] for step in record.steps}
    try:
        drawn = graphs.graph_of(build.checked_definition(settings, pipeline))
    except graphs.DefinitionError as ex:
        raise HarnessError(f"pipeline {pipeline.name!r}: {ex}") from None
    if args.format == "mermaid":
        data = graphs.to_mermaid(drawn, outcomes).encode()
    else:
        text = graphs.to_dot(drawn, outcomes)
        try:
            data = text.encode() if args.format == "dot" else graphs.rendered(text, args.format)
        except (graphs.GraphvizMissing, RuntimeError) as ex:
            raise HarnessError(str(ex)) from None
    if args.output is None:
        sys.stdout.buffer.write(data)
        return 0
    write_atomically(args.output, data)
    print(f"wrote {args.output}")
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from harness import lineage, records
    from harness.errors import HarnessError

    settings = _load(args)
    try:
        found = lineage.of(args.name, records.load_all(settings.records_dir))
    except lineage.UnknownRun as ex:
        raise HarnessError(f"{ex} (environment {settings.env})") from None
    for line in lineage.lines(found):
        print(line)
    return 0


def _console(args: argparse.Namespace) -> int:
    import threading
    import webbrowser

    from werkzeug.serving import make_server

    from harness.console import Console
    from harness.errors import HarnessError

    settings = _load(args)
    try:
        server = make_server("127.0.0.1", args.port, Console(settings), threaded=True)
    except OSError as ex:
        raise HarnessError(
            f"cannot serve the console on 127.0.0.1:{args.port}: {ex.strerror}; choose another --port"
        ) from None
    address = f"http://127.0.0.1:{server.server_port}/"
    print(f"console of {settings.project.name} ({settings.env}) on {address} (Ctrl-C stops it)", flush=True)
    if args.open:
        threading.Timer(0.2, webbrowser.open, args=(address,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("console stopped")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from harness import config, step_cache_view
    from harness.project import ProjectNotFound

    try:
        emulator = _load(args, env=args.env).emulator
    except ProjectNotFound:  # outside a project: the machine's cache, where the local AWS keeps it
        emulator = config.Emulator()
    if args.action == "clear":
        where, removed = step_cache_view.clear(emulator)
        print(f"removed {removed} entries from the step cache in {where}")
        return 0
    where, entries, size = step_cache_view.listing(emulator)
    if not entries:
        print(f"the step cache in {where} is empty")
        return 0
    print(f"{'job':44} {'kind':11} {'size':>10} {'last used':20}")
    for entry in entries:
        size_text, used = _size(entry["bytes"]), _when(entry["last_used"])
        print(f"{entry['job']:44} {entry['kind']:11} {size_text:>10} {used:20}")
    print(f"{len(entries)} entries, {_size(size)}, in {where}")
    return 0


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def _when(stamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _reconcile_and_read_deployed(settings, selected) -> list[str]:
    """Reconcile unfinished records with the target, then describe the deployed schedules and what
    the latest runs left in service. A local AWS that is not running is not started for this: what
    it kept of the executions that ended says how its runs went."""
    from harness import deployed, reconcile, records, runs, targets
    from harness.errors import HarnessError

    scheduled = [p for p in selected if p.schedule is not None]
    names = {p.name for p in selected}
    target = targets.make_target(settings, log=lambda line: None)
    if isinstance(target, targets.LocalTarget) and not target.running():
        unfinished = [r for r in records.load_all(settings.records_dir) if r.status in reconcile.UNFINISHED]
        # what the local AWS kept of the executions that ended before it stopped
        reconcile.reconcile(
            settings,
            None,
            None,
            unfinished,
            save=lambda record: records.save(record, settings.records_dir),
            kept=target.kept_executions(),
        )
        left = sorted(
            {
                r.pipeline
                for r in records.load_all(settings.records_dir)
                if r.resources and r.pipeline in names
            }
        )
        return [
            f"{p.name} schedule: {settings.schedule(p.name).expression or 'none'} "
            "(configured; the local AWS is not running to show it)"
            for p in scheduled
        ] + [f"{name}: the local AWS is not running to show what it left in service" for name in left]
    lines: list[str] = []
    try:
        with target:
            resolved = target.resolve(settings)
            runs.reconcile_records(resolved, target, lines.append)
            for pipeline in scheduled:
                lines += deployed.schedule_lines(resolved, target, pipeline)
            latest = {
                r.pipeline: r
                for r in records.load_all(settings.records_dir)
                if r.status == "SUCCEEDED" and r.resources
            }
            for record in latest.values():
                if record.pipeline in names:
                    lines += deployed.resource_lines(target, record)
    except HarnessError as ex:
        lines.append(f"deployed state: unknown ({ex})")
    return lines


def _pipelines(args: argparse.Namespace) -> int:
    import json

    settings = _load(args, env=args.env)
    for pipeline in settings.pipelines:
        print(f"{pipeline.name}: {pipeline.description}")
        print(f"  names {pipeline.prefix}-*; creates {', '.join(sorted(pipeline.kinds))}")
        for item in pipeline.inputs:
            source = settings.inputs.get(item.name)
            given = (
                settings.project.relative(source.path) if source and source.path
                else "generated" if item.generate is not None else "not given"
            )  # fmt: skip
            print(f"  input {item.name} ({item.kind}): {given}")
        if pipeline.consumes or pipeline.produces:
            consumes = ", ".join(a.kind for a in pipeline.consumes) or "nothing"
            produces = ", ".join(a.kind for a in pipeline.produces) or "nothing"
            print(f"  consumes {consumes}; produces {produces}")
        schedule = settings.schedule(pipeline.name).expression if pipeline.schedule else None
        runs = "in a plain `run`" if pipeline.runs_by_default else "when named (--pipeline)"
        print(f"  runs {runs}" + (f"; scheduled {schedule}" if schedule else ""))
        for key, value in settings.settings[pipeline.name].items():
            print(f"  settings.{pipeline.name}.{key}: {json.dumps(value)}")
    return 0


def _report(line: str) -> None:
    print(line, flush=True)


def _ask(question: str) -> bool | None:
    """A yes/no question on the terminal; None when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        return None
    try:
        return input(question).strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        return False


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    # The Step Functions SDK imports pkg_resources, which warns on every import.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    args = build_parser().parse_args(argv)
    if args.command != "emulator":
        _quiet_libraries()
    from botocore.exceptions import BotoCoreError, ClientError

    from harness.errors import HarnessError
    from harness.reconcile import Terminated

    def on_sigterm(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)  # unwinds, so records say what is known
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except (HarnessError, ClientError, BotoCoreError) as ex:
        print(f"error: {' '.join(str(ex).split())}", file=sys.stderr)
        _debug(args, ex)
        return 1
    except (_UsageError, ValueError) as ex:  # bad command line or configuration
        print(f"error: {ex}", file=sys.stderr)
        _debug(args, ex)
        return 2


def _debug(args, ex: BaseException) -> None:
    """With --debug, the traceback behind the one line: the user's code's own first (what the
    line summarises, though raised `from None`), then where the harness reported it."""
    if not args.debug:
        return
    import traceback

    chain = []
    cause: BaseException | None = ex
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for one in reversed(chain):
        traceback.print_exception(type(one), one, one.__traceback__, chain=False, file=sys.stderr)


def _quiet_libraries() -> None:
    """The SDKs log at INFO on import (and stepfunctions resets the root logger)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("sagemaker", "sagemaker.config", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # It warns on import that IPython (notebook rendering) is missing; nothing here needs it.
    logging.getLogger("stepfunctions").setLevel(logging.ERROR)
    # Its import sets the root logger to ERROR: the harness's own warnings (a damaged file moved
    # aside) keep their level whatever the root's.
    logging.getLogger("harness").setLevel(logging.WARNING)
