"""Sphinx configuration of csc's documentation (``docs/README.md`` says how to build it).

The site is built with warnings as errors and nitpicky references (``sphinx-build -W -n``):
every cross-reference must resolve. References to names outside csc (torch, numpy, scipy, …)
cannot resolve offline (no intersphinx inventories are fetched), so they are ignored by the
documented list :data:`EXTERNAL_PREFIXES` below, and nothing else.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))        # import csc from the checkout being documented
sys.path.insert(0, str(DOCS / "_ext"))

import csc  # noqa: E402
from sphinx.util.nodes import make_refnode  # noqa: E402

project = "csc"
author = "the csc authors"
copyright = "2026, the csc authors"
release = csc.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "notebook_gallery",              # docs/_ext: the paper's notebooks as gallery pages
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "README.md", "examples", "**/README.md"]
templates_path = ["_templates"]

# -- MyST (the user guide is Markdown moved from the README) --------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3             # benchmarks/README.md links to its own sections
# benchmarks/README.md (included as it is) goes from its title to "###" sections; a style
# warning, not a broken reference
suppress_warnings = ["myst.header"]

# -- API reference -----------------------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False   # a module's __all__ is its public API
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"              # the docstrings say the types; signatures stay short
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

# -- nitpicky references --------------------------------------------------------------------
nitpicky = True
#: Names outside csc that docstrings and signatures mention. Their documentation is not
#: reachable offline (no intersphinx), so references to them are not checked. Anything under
#: ``csc.`` must resolve.
EXTERNAL_PREFIXES = (
    "torch", "numpy", "np", "scipy", "numba", "pyfftw", "sporco", "matplotlib", "PIL", "skimage",
    "torchvision", "tqdm", "argparse", "pathlib", "os", "typing", "collections", "dataclasses",
    "concurrent", "threading", "contextlib", "enum", "abc", "io", "json", "warnings", "functools",
    "jax", "scico", "dicodile", "math", "importlib", "Module",
)
#: Python built-ins, written as plain names in docstrings (no intersphinx for the standard library).
BUILTINS = set(dir(builtins))
nitpick_ignore_regex = [
    (r"py:.*", r"(%s)(\..*)?" % "|".join(re.escape(p) for p in EXTERNAL_PREFIXES)),
    (r"py:.*", r"(%s)" % "|".join(re.escape(b) for b in sorted(BUILTINS))),
]

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"csc {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_show_sourcelink = False

# -- the gallery ---------------------------------------------------------------------------------
# Nothing is executed at build time (plot_gallery False): every example has a quick mode that the
# test suite runs, and the long ones would take minutes to hours. Figures come from the committed
# PNGs that each example's text shows.
_gallery_dirs = [str(DOCS / "examples")]
_gallery_out = ["gallery/worked"]
sphinx_gallery_conf = {
    "examples_dirs": _gallery_dirs,
    "gallery_dirs": _gallery_out,
    "filename_pattern": r"^$",          # execute none of them
    "plot_gallery": "False",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_signature": False,
    "min_reported_time": 10**9,
}


# -- csc.NAME aliases -----------------------------------------------------------------------
_MISSING = object()


def _sets_attribute(cls, name: str) -> bool:
    """Whether a method of ``cls`` assigns ``self.NAME`` (an instance attribute)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return False
    return re.search(rf"self\.{re.escape(name)}\s*(:[^=]+)?=[^=]", source) is not None


def _import_target(target: str):
    """The object a dotted name imports to, or ``_MISSING`` (a dataclass field, an annotated
    attribute without a class-level value or an instance attribute imports as its class)."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:
            continue
        for p in parts[cut:]:
            value = getattr(obj, p, _MISSING)
            if value is _MISSING:
                if inspect.isclass(obj) and (p in getattr(obj, "__annotations__", {})
                                             or _sets_attribute(obj, p)):
                    return obj   # a field or an instance attribute: refer to its class
                return _MISSING
            obj = value
        return obj
    return _MISSING


def _canonical(obj) -> str | None:
    if inspect.ismodule(obj):
        return obj.__name__
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module and qualname:
        return f"{module}.{qualname}"
    return None


def _module_of_doc(docname: str) -> str | None:
    """The module an API page documents (``api/generated/csc.core.ops.soft_threshold`` →
    ``csc.core.ops``), for references written without their module in autosummary tables."""
    name = docname.rsplit("/", 1)[-1]
    if not name.startswith("csc."):
        return None
    obj = _import_target(name)
    if obj is _MISSING:
        return None
    if inspect.ismodule(obj):
        return obj.__name__
    return getattr(obj, "__module__", None)


def resolve_alias(app, env, node, contnode):
    """Resolve what the Python domain did not, in this order:

    1. a re-exported name (``csc.ConvBPDN``, a module's imported ``CBPDNOptions``) at the module
       that defines it, where the API reference documents it once;
    2. a name written without its module or class (in a docstring's summary line shown in an
       autosummary table): the one documented object of that name, the defining module's
       first;
    3. a name that imports (so the reference is right) but is not in the public API (private
       helpers, a class's attributes): shown as code, without a link.

    A name that neither is documented nor imports stays a warning, so a broken reference in a
    docstring fails the build."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    reftype = node["reftype"]
    domain = env.get_domain("py")
    modname = node.get("py:module") or _module_of_doc(node["refdoc"])
    clsname = node.get("py:class")
    candidates = [target]
    if modname and not target.startswith("csc."):
        if clsname:
            candidates.append(f"{modname}.{clsname}.{target}")
        candidates.append(f"{modname}.{target}")
    found = []
    for cand in candidates:
        if not cand.startswith("csc."):
            continue
        obj = _import_target(cand)
        if obj is _MISSING:
            continue
        found.append(cand)
        linkable = inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)
        canonical = _canonical(obj) if linkable else None
        parent = _import_target(cand.rsplit(".", 1)[0])
        owner = _canonical(parent) if not linkable and inspect.isclass(parent) else None
        for name in (canonical, cand, owner):   # an attribute without its own entry: its class
            if name and name in domain.objects:
                entry = domain.objects[name]
                return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)
    matches = sorted((n for n in domain.objects if n.endswith("." + target) and n.startswith("csc.")),
                     key=lambda n: (_canonical(_import_target(n)) != n, len(n)))
    if matches:
        entry = domain.objects[matches[0]]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0])
    if found:
        return contnode
    return None


def write_top_level(path: Path) -> int:
    """``api/top_level.rst``: a table of :data:`csc.__all__`, each name linked to where it is
    documented (its defining module), and one of the other names importable from ``csc``."""
    def rows(names):
        out = []
        for name in names:
            obj = getattr(csc, name)
            canonical = _canonical(obj)
            if canonical and canonical.startswith("csc.") and not inspect.ismodule(obj):
                out.append(f"   ~{canonical}")
        return out

    public = rows(csc.__all__)
    others = rows(sorted(n for n in dir(csc) if not n.startswith("_") and n not in csc.__all__
                         and not inspect.ismodule(getattr(csc, n))))
    text = ["The top level: ``csc.__all__``", "-" * 30, "",
            f"The {len(public)} names of ``csc.__all__`` (``import csc; csc.ConvBPDN`` …):", "",
            ".. autosummary::", "   :nosignatures:", ""] + public + [
            "", "Also importable from ``csc``", "-" * 28, "",
            "Importable as ``csc.NAME`` but not listed in ``csc.__all__`` (statistics records, the "
            "variants' results, problems added after the list was capped):", "",
            ".. autosummary::", "   :nosignatures:", ""] + others + [""]
    path.write_text("\n".join(text))
    return len(public)


_INLINE = re.compile(r"(``.+?``|:\w+:`[^`]*`|`[^`]*`_?)")


def escape_bars(app, what, name, obj, options, lines):
    """Docstrings write absolute values and norms in plain text (``|x|``, ``Σ_k |D̂_k|²``);
    reST would read ``|x|`` as a substitution reference. Escape the bars in plain text only:
    not in inline literals, roles (``:math:``), ``.. math::`` blocks, literal blocks or tables."""
    block_indent = None
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if block_indent is not None:
            if stripped and indent <= block_indent:
                block_indent = None
            else:
                continue
        if stripped.startswith(".. math::") or stripped.endswith("::"):
            block_indent = indent
            if stripped.startswith(".."):
                continue
        if re.match(r"^\s*([|+]).*[|+]\s*$", line) or "|" not in line:   # a grid table row
            continue
        parts = _INLINE.split(line)
        lines[i] = "".join(p if k % 2 else p.replace("|", "\\|") for k, p in enumerate(parts))


def setup(app):
    app.connect("autodoc-process-docstring", escape_bars)
    write_top_level(DOCS / "api" / "top_level.rst")
    app.connect("missing-reference", resolve_alias)
