"""The documentation site builds with warnings as errors (broken links and anchors included),
and the README points into it."""

import re
import subprocess
import sys

from tests import ROOT


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "pipelines" / "index.html").exists()


def test_every_page_the_readme_links_to_exists():
    linked = re.findall(r"\]\((docs/[^)#]+)", (ROOT / "README.md").read_text())
    assert linked and all((ROOT / path).is_file() for path in linked), linked
