"""A failing user's code is one line on stderr; with --debug, its whole traceback after it."""

from __future__ import annotations

from harness import cli


def test_one_line_and_with_debug_the_users_own_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLHARNESS_DEBUG", raising=False)
    project = tmp_path / "churn"
    assert cli.main(["init", str(project)]) == 0
    pipeline = project / "pipelines" / "churn.py"
    pipeline.write_text(
        pipeline.read_text().replace(
            "def definition(build) -> dict:\n",
            "def definition(build) -> dict:\n    raise ValueError('bad def')\n",
        )
    )
    line = pipeline.read_text().splitlines().index("    raise ValueError('bad def')") + 1
    capsys.readouterr()

    assert cli.main(["build", "--project", str(project)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: pipeline 'churn': its definition() raised ValueError: bad def (churn.py, line {line})"
    ]

    assert cli.main(["--debug", "build", "--project", str(project)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: pipeline 'churn'")
    assert f'File "{pipeline}", line {line}, in definition' in err and "ValueError: bad def" in err
