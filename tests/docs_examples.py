"""The documentation's examples, as the tests that keep them true read them."""

from __future__ import annotations

import re

from tests import ROOT

DOCS = ROOT / "docs"


def files(page: str, prefix: str = "") -> dict[str, str]:
    """The page's fenced code blocks whose first line is `# <path>` (path starting with `prefix`),
    by path, without that line."""
    blocks = re.findall(r"```(?:python|sh|yaml)\n(.*?)```", (DOCS / page).read_text(), re.S)
    return {
        block.split("\n", 1)[0].removeprefix("# "): block.split("\n", 1)[1]
        for block in blocks
        if block.startswith(f"# {prefix}") and block.split("\n", 1)[0].count(" ") == 1
    }
