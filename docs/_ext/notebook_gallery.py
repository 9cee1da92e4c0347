"""The paper's figure notebooks (``notebooks/*.ipynb``) and the ported SPORCO examples
(``examples/sporco/*.py``) as gallery pages, written at build time.

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


def _docstring_parts(path: Path) -> tuple[str, str]:
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first, _, rest = doc.partition("\n")
    return first.strip(), rest.strip()


def write_sporco_pages(root: Path, docs: Path) -> int:
    """One page per port of a SPORCO example script: its docstring, how to run it, its code
    (included from the file, so the page is the code as it is). Not executed: the ports need
    SPORCO for their data, and ``tests/examples/`` runs their quick mode."""
    src = root / "examples" / "sporco"
    out = docs / "gallery" / "sporco"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ports = sorted(p for p in src.glob("*.py") if not p.name.startswith("_")) if src.is_dir() else []
    lines = ["# SPORCO's examples on csc", ""]
    if not ports:
        lines += ["This checkout has no `examples/sporco/`.", ""]
    else:
        lines += [f"SPORCO 0.2.2's convolutional example scripts ported to csc, {len(ports)} scripts, one file "
                  "each (`examples/sporco/`): the same data and options, solved by csc. Run one with "
                  "`python -m examples.sporco.NAME [--quick] [--compare] [--plot]` from the repository root "
                  "(`--compare` runs SPORCO too and prints the differences); they need SPORCO installed for "
                  "its example images and dictionaries. None is executed when the docs are built; "
                  "`tests/examples/` runs every port's quick mode against SPORCO.", ""]
        table = root / "benchmarks" / "results" / "sporco_examples" / "table.md"
        if table.exists():
            lines += ["The table of all ports (`benchmarks/sporco_examples.py`): status, precision against "
                      "SPORCO, time.", "", "```{include} ../../../benchmarks/results/sporco_examples/table.md", ":start-line: 1",
                      "```", ""]   # without the table's own title
        lines += ["| script | what |", "|---|---|"]
    for path in ports:
        first, rest = _docstring_parts(path)
        what = first.split(" on csc: ", 1)[-1].rstrip(".") if " on csc: " in first else first
        rel = f"../../../examples/sporco/{path.name}"
        page = [f"# `{path.stem}`: {what}", "", first, "", rest, "",
                f"Run: `python -m examples.sporco.{path.stem} [--quick] [--compare] [--plot]` "
                "(from the repository root; needs SPORCO for the data).", "",
                f"```{{literalinclude}} {rel}", ":language: python", "```", ""]
        (out / f"{path.stem}.md").write_text("\n".join(page))
        lines.append(f"| [{path.stem}]({path.stem}.md) | {what.replace('|', '/')} |")
    lines += ["", "```{toctree}", ":hidden:", ""] + [p.stem for p in ports] + ["```", ""]
    (out / "index.md").write_text("\n".join(lines))
    return len(ports)


def _builder_inited(app):
    docs = Path(app.srcdir)
    write_pages(docs.parent, docs)
    write_sporco_pages(docs.parent, docs)


def setup(app):
    app.connect("builder-inited", _builder_inited)
    return {"parallel_read_safe": True, "version": "1"}
