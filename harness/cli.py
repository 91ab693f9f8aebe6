"""`python -m harness`: parse the command line and hand off; no logic here."""

from __future__ import annotations

import argparse

from harness.emulator import server as emulator_server


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Run Step Functions + SageMaker pipelines locally or on AWS.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    emulator = commands.add_parser("emulator", help="run the local AWS in the foreground")
    emulator_server.build_parser(emulator)
    emulator.set_defaults(handler=emulator_server.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
