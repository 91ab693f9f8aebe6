"""The local AWS's options: spelled once, one default each, and the same on both sides of the
command line that starts the emulator process."""

import argparse
import dataclasses
from pathlib import Path

import pytest

from harness import config
from harness.emulator import Options
from harness.emulator.server import build_parser


def test_options_survive_the_command_line_that_starts_the_process():
    given = Options(
        port=0,
        state_dir=Path("/tmp/state"),
        docker_gateway=False,
        cache_dir=Path("/tmp/cache"),
        cache_max_gb=2.5,
        iam="strict",
        managed=True,
        ready_file=Path("/tmp/ready.json"),
    )
    parsed = build_parser().parse_args(given.argv())
    assert Options.from_arguments(parsed) == given
    assert Options.from_arguments(build_parser().parse_args([])) == Options()  # every default, once


def test_the_configuration_and_the_emulator_share_the_defaults():
    loaded = config.load("local", ["emulator.iam=soft"])
    assert config.Emulator().iam == Options().iam == "soft"
    assert config.Emulator().port == Options().port and config.Emulator().engine == Options().engine
    assert loaded.emulator.iam in Options.CHOICES["iam"]


def test_a_value_outside_its_choices_is_refused():
    with pytest.raises(ValueError, match="iam: expected one of off, soft, strict"):
        Options(iam="lenient")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--engine", "kubernetes"])


def test_paths_given_as_text_are_paths():
    assert Options(state_dir="/tmp/x").state_dir == Path("/tmp/x")
    assert dataclasses.replace(Options(), init_dir="/etc/init").init_dir == Path("/etc/init")
    assert isinstance(build_parser(argparse.ArgumentParser()), argparse.ArgumentParser)
