"""The README and the docs' sources (issue 35): a short README that opens with the two
commands and links only to files that exist, every user-guide page in the site's table of
contents, and one version. The docs build itself (``sphinx-build -W -n``) runs in CI
(``.ci/run``, ``docs/README.md``), not here: it takes minutes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TWO_COMMANDS = (
    "bash scripts/setup.sh && .venv/bin/csc demo --out out/demo",
    "bash scripts/setup.sh && .venv/bin/python -m pytest -q",
)


def test_readme_is_short_and_opens_with_the_two_commands():
    lines = README.splitlines()
    assert len(lines) <= 150, len(lines)
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert README.index("```bash") < 200
    for command in TWO_COMMANDS:
        assert command in first_block


def test_readme_links_exist():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if target.startswith(("http://", "https://")):
            continue
        assert (ROOT / target).exists(), target


def test_every_guide_page_is_in_the_toctree():
    index = (ROOT / "docs" / "index.md").read_text()
    pages = sorted(p.stem for p in (ROOT / "docs" / "guide").glob("*.md"))
    assert pages
    for page in pages:
        assert f"guide/{page}\n" in index, page


def test_one_version_and_the_distribution_name():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'name = "csc-torch"' in pyproject
    assert 'dynamic = ["version"]' in pyproject and 'attr = "csc.__version__"' in pyproject
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, re.M)   # no second, static version
