"""Static checks of csc's shape (docs/guide/architecture.md, "Architecture"): layers point down, no import cycles,
workspaces are made in the back-end registry only. They read the source (every import,
at module level or inside a function), not the imported modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "csc"

#: the layers, bottom up; a module may import its own layer and those below it
LAYERS = (
    ("runtime",),
    ("core",),
    ("backends",),
    ("problems",),
    ("learn", "nn", "dictionary"),
    ("pipeline", "science", "classify"),
    ("cli",),
)

#: the workspace classes (and the dictionary steps' operators) the registry constructs
WORKSPACES = {
    "TorchCBPDN", "CompiledCBPDN", "FusedCBPDN", "FusedJointCBPDN", "FusedAddMaskSim", "TorchTwoBlock",
    "TorchMaskDcpl", "FusedTwoBlock", "FusedMaskDcpl", "TorchFISTA", "FusedFISTA", "TorchPGMOps",
    "TorchConsensusOps", "TorchMaskedPGMOps", "TorchMaskedConsensusOps", "FusedPGMOps", "FusedConsensusOps",
    "PerChannelOps", "TorchTVL2", "TorchISMOps",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a csc module in ``path``: ``from csc.a import b`` is
    csc.a.b when that is a module, else csc.a; relative imports resolved."""
    tree, name = ast.parse(path.read_text()), _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "csc"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "csc":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((node.lineno, sub if sub in MODULES else base))
    return out


def _layer(module: str) -> int | None:
    """The layer of a csc module (None: csc._compat, the old-name shims); ``csc`` itself, which
    loads everything, counts as the top layer."""
    parts = module.split(".")
    if len(parts) < 2:
        return len(LAYERS) - 1
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    return None if parts[1] == "_compat" else len(LAYERS) - 1


def test_core_imports_nothing_above_it():
    """Nothing in csc/core imports csc.backends, csc.problems, csc.learn, csc.cli or any layer
    above core, at module level or inside a function."""
    bad = [f"{MODULES[m].relative_to(ROOT.parent)}:{line} imports {target}"
           for m in MODULES if m.startswith("csc.core")
           for line, target in _imports(MODULES[m])
           if (_layer(target) or 0) > _layer(m)]
    assert not bad, "\n".join(bad)


def test_layers_point_down():
    """Every module imports its own layer and the layers below it only (csc/__init__ and the
    old-name shims aside)."""
    bad = []
    for m, path in MODULES.items():
        own = _layer(m)
        if own is None or m == "csc":
            continue
        for line, target in _imports(path):
            t = _layer(target)
            if t is not None and t > own:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} ({LAYERS[own][0]}) imports {target}")
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    """No cycle among csc's modules, counting imports inside functions (package __init__ files,
    which re-export, are left out: an edge to a package stands for its modules' names)."""
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    graph = {m: {t for _, t in _imports(p) if t in MODULES and t not in packages and t != m}
             for m, p in MODULES.items() if m not in packages}
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" → ".join(c) for c in cycles)


def test_workspaces_are_made_in_the_registry_only():
    """Only csc.backends.registry constructs a workspace (or a dictionary step's operators)."""
    bad = []
    for module, path in MODULES.items():
        if module == "csc.backends.registry":
            continue
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute)):
                name = n.func.id if isinstance(n.func, ast.Name) else n.func.attr
                if name in WORKSPACES:
                    bad.append(f"{path.relative_to(ROOT.parent)}:{n.lineno} constructs {name}")
    assert not bad, "\n".join(bad)


def test_moved_names_still_import_with_a_warning():
    """The front-end and back-end-choice names that moved keep working from their old modules,
    with a DeprecationWarning naming the new one."""
    import warnings

    import csc  # noqa: F401  (loads the layers the old names read from)
    from csc.backends import fused, registry
    from csc.core import fista
    from csc.problems.fista import ConvBPDNFISTA

    for module, name, new in ((fused, "select_backend", registry.select_backend), (fused, "use_fused", registry.use_fused),
                              (fista, "ConvBPDNFISTA", ConvBPDNFISTA)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert getattr(module, name) is new
        assert any(issubclass(w.category, DeprecationWarning) and name in str(w.message) for w in caught)
