"""The paper's figure notebooks (``notebooks/*.ipynb``) as gallery pages, written at build time.

Each page shows the notebook's committed full-mode figure (``notebooks/figures/``), its text
and its code, in order. Nothing is executed: the notebooks take minutes to run in full mode
(``notebooks/run_all.py``); their quick mode is run by ``tests/test_notebooks.py``. The pages
and the copied figures are build outputs (git-ignored), so a notebook is documented as it is
in the checkout.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

#: notebook stem -> (gallery section, one-line caption for the index)
SECTIONS = {"fig": "The paper's figures", "example": "Worked examples (beside SPORCO)"}


def _figures(stem: str, figdir: Path) -> list[Path]:
    found = [figdir / f"{stem}.png"] if (figdir / f"{stem}.png").exists() else []
    m = re.match(r"(fig\d+)_", stem)
    if m:  # fig2_dictionaries also draws fig2_colour
        found += sorted(p for p in figdir.glob(f"{m.group(1)}_*.png") if p.stem != stem)
    return found


def _title(nb: dict, stem: str) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return stem


def write_pages(root: Path, docs: Path) -> list[tuple[str, str, list[str]]]:
    nbdir, figdir = root / "notebooks", root / "notebooks" / "figures"
    out = docs / "gallery" / "notebooks"
    static = docs / "_static" / "notebook_figures"
    for d in (out, static):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    for png in figdir.glob("*.png"):
        shutil.copy2(png, static / png.name)
    entries = []
    for path in sorted(nbdir.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        stem = path.stem
        figs = [f"../../_static/notebook_figures/{p.name}" for p in _figures(stem, figdir)]
        parts, first = [], True
        for cell in nb["cells"]:
            src = "".join(cell["source"]).rstrip()
            if cell["cell_type"] == "markdown":
                parts.append(src)
                if first:
                    parts.append(
                        f"*Source: `notebooks/{path.name}` (run it with "
                        f"`python notebooks/run_all.py {stem.split('_')[0] if stem.startswith('fig') else stem}`; "
                        "quick mode: `CSC_NOTEBOOK_QUICK=1`). The figure is the committed full-mode output; "
                        "nothing is executed when the docs are built.*")
                    parts += [f"![{stem}]({f})" for f in figs]
                    first = False
            elif cell["cell_type"] == "code" and src:
                parts.append("```python\n" + src + "\n```")
        (out / f"{stem}.md").write_text("\n\n".join(parts) + "\n")
        entries.append((stem, _title(nb, stem), figs))
    lines = ["# The paper's figures and the worked examples", "",
             "One page per notebook of `notebooks/`: the committed figure, then the notebook's text "
             "and code. See also {doc}`../../guide/paper`.", ""]
    for prefix, heading in SECTIONS.items():
        lines += [f"## {heading}", "", "| | |", "|---|---|"]
        row = []
        for stem, title, figs in entries:
            if not stem.startswith(prefix):
                continue
            thumb = f"![]({figs[0]})" if figs else ""
            row.append(f"[{title}]({stem}.md) {thumb}")
            if len(row) == 2:
                lines.append("| " + " | ".join(row) + " |")
                row = []
        if row:
            lines.append("| " + " | ".join(row + [""]) + " |")
        lines.append("")
    lines += ["```{toctree}", ":hidden:", ""] + [stem for stem, _, _ in entries] + ["```", ""]
    (out / "index.md").write_text("\n".join(lines))
    return entries


def _builder_inited(app):
    docs = Path(app.srcdir)
    write_pages(docs.parent, docs)


def setup(app):
    app.connect("builder-inited", _builder_inited)
    return {"parallel_read_safe": True, "version": "1"}
