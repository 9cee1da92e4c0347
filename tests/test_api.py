"""The package's public surface: a curated ``csc.__all__``, heavy modules loaded on first use,
and every ``csc.NAME`` that the README, notebooks, tests and benchmarks use still resolving."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import csc

#: modules that ``import csc`` must leave alone: the training loop, the analysis (scipy), the
#: code store and datasets, the ResNet, the sweeps and the demo, the command line and the
#: SPORCO comparison harness
HEAVY = ("csc.nn", "csc.classify.train", "csc.classify.models", "csc.science.analysis", "csc.science.sweep",
         "csc.pipeline.store", "csc.pipeline.datasets", "csc.cli", "csc.cli.main", "csc.cli.demo", "csc.science.demo",
         "csc.cli.bench", "benchmarks", "benchmarks.bench",
         "scipy", "matplotlib", "sporco", "pyfftw", "jax", "scico", "dicodile")

#: ``csc.NAME`` used in README.md, notebooks/, tests/ and benchmarks/ (outside ``__all__`` too)
USED = ("CBPDNOptions", "CBPDNResult", "ConvBPDN", "DemoConfig", "DictLearn", "DictLearnOptions",
        "DictUpdateOptions", "IterationStats", "OnlineDictLearn", "SparseCodeDataset", "aggregate_runs",
        "circular_variance", "dictionary_metadata", "encode", "fit_kernel_params", "from_sporco_layout",
        "load_dictionary", "loggabor_dictionary", "loggabor_kernel", "orientation_histogram",
        "plot_pruning_curves", "prune", "pruning_sweep", "psnr", "psnr_paper", "resnet18", "run_demo",
        "save_dictionary", "shipped_dictionaries", "sparseness", "table_markdown", "to_sporco_layout",
        # the rest of the names csc exported before __all__ was curated
        "DemoResult", "DictLearnResult", "DictLearnStats", "EncodeSettings", "KernelFit", "LogGaborParams",
        "OnlineDictLearnOptions", "OnlineDictLearnResult", "OnlineStats", "PixelDataset", "PruningSweep",
        "ResNet18", "StoreError", "TrainOptions", "angular_bandwidth_degrees", "CodeStore", "encode_dataset",
        "loggabor_kernels", "train_classifier", "verify_store")

#: layer packages → the module they name
MODULES = {"core": "csc.core", "backends": "csc.backends", "learn": "csc.learn", "dictionary": "csc.dictionary",
           "pipeline": "csc.pipeline", "classify": "csc.classify", "science": "csc.science",
           "runtime": "csc.runtime", "cli": "csc.cli", "dictionaries": "csc.dictionaries", "nn": "csc.nn"}

#: the flat module names of before the layers (deprecated: they warn) → the module they name
OLD_MODULES = {"metrics": "csc.science.metrics", "dictlearn": "csc.learn.dictlearn", "data": "csc.pipeline.sources",
               "models": "csc.classify.models", "analysis": "csc.science.analysis", "train": "csc.classify.train",
               "store": "csc.pipeline.store", "demo": "csc.science.demo", "ops": "csc.core.ops", "io": "csc.dictionary.io"}


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_csc_loads_no_heavy_module():
    code = (
        "import json, sys\n"
        "import torch\n"
        "before = set(sys.modules)\n"
        "import csc\n"
        "new = set(sys.modules) - before\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "dist = sorted(m for m in new if m.startswith(('torch.distributed', 'torch.nn.parallel')))\n"
        "print(json.dumps({'heavy': heavy, 'dist': dist}))\n"
    )
    got = _run(code)
    assert got == {"heavy": [], "dist": []}


def test_every_public_name_resolves_in_a_fresh_process():
    code = (
        "import json, sys\n"
        "import csc\n"
        "missing = [n for n in csc.__all__ if getattr(csc, n, None) is None]\n"
        "ns = {}\n"
        "exec('from csc import *', ns)\n"
        "print(json.dumps({'missing': missing, 'star': sorted(set(csc.__all__) - set(ns)),\n"
        "                  'store': 'csc.pipeline.store' in sys.modules}))\n"
    )
    assert _run(code) == {"missing": [], "star": [], "store": True}


def test_lazy_name_loads_its_module_on_first_use():
    code = (
        "import json, sys\n"
        "import csc\n"
        "before = 'csc.pipeline.store' in sys.modules\n"
        "cls = csc.CodeStore\n"
        "print(json.dumps([before, 'csc.pipeline.store' in sys.modules, cls.__module__,\n"
        "                  'csc.classify.train' in sys.modules]))\n"
    )
    assert _run(code) == [False, True, "csc.pipeline.store", False]


def test_all_is_curated():
    assert len(csc.__all__) <= 51  # the solvers, learners, dictionaries, metrics and stores a user names
    assert len(set(csc.__all__)) == len(csc.__all__)
    assert all(not n.startswith("_") for n in csc.__all__)
    assert not set(csc.__all__) & (set(MODULES) | set(OLD_MODULES))  # names, not modules


@pytest.mark.parametrize("name", USED)
def test_used_names_resolve_and_are_listed(name):
    assert getattr(csc, name) is not None
    assert name in dir(csc)


def test_lazy_names_are_the_modules_objects():
    from csc.classify import train
    from csc.pipeline import store

    assert csc.CodeStore is store.CodeStore
    assert csc.train_classifier is train.train
    assert csc.run_demo is sys.modules["csc.science.demo"].run_demo


@pytest.mark.parametrize("name,module", sorted(MODULES.items()))
def test_module_names_resolve(name, module):
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the layer packages are not deprecated
        assert getattr(csc, name) is importlib.import_module(module)
    assert name in dir(csc)


def _deprecated(old: str, new: str):
    return pytest.warns(DeprecationWarning, match=rf"{old} is deprecated, import {new} instead.*csc 0\.3")


def _forget(monkeypatch, old: str) -> None:
    """Undo, for this test, an earlier ``import OLD`` (the warning comes with the first import,
    which also sets the attribute on ``csc``); ``hasattr`` would go through csc.__getattr__."""
    monkeypatch.delitem(sys.modules, old, raising=False)
    if old.rpartition(".")[2] in vars(csc):
        monkeypatch.delattr(csc, old.rpartition(".")[2])


@pytest.mark.parametrize("name,module", sorted(OLD_MODULES.items()))
def test_old_module_attributes_warn_and_are_the_new_modules(name, module, monkeypatch):
    import importlib

    _forget(monkeypatch, f"csc.{name}")
    with _deprecated(f"csc.{name}", module):
        got = getattr(csc, name)
    assert got is importlib.import_module(module)
    assert name not in dir(csc)  # not advertised, so that introspection does not warn


@pytest.mark.parametrize("old,new", sorted(csc._compat.MOVED.items()))
def test_old_module_imports_warn_and_are_the_new_modules(old, new, monkeypatch):
    import importlib

    _forget(monkeypatch, old)
    with _deprecated(old, new):
        got = importlib.import_module(old)
    assert got is importlib.import_module(new)
    assert got.__name__ == new


def test_old_bench_module_is_gone(monkeypatch):
    """``csc.bench`` pointed at the SPORCO comparison harness, which left the package for the
    checkout's benchmarks/bench/: the old name is no longer mapped and does not import."""
    import importlib

    _forget(monkeypatch, "csc.bench")
    assert "csc.bench" not in csc._compat.MOVED
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("csc.bench")


def test_demo_names_read_from_the_command_module_warn():
    """The demo's library names, read where they were before (csc.cli.demo), are
    csc.science.demo's, with a warning naming it; unknown names raise AttributeError."""
    import csc.cli.demo as command
    import csc.science.demo as demo

    with _deprecated("csc.cli.demo.run_demo", "csc.science.demo.run_demo"):
        assert command.run_demo is demo.run_demo
    with _deprecated("csc.cli.demo.prepare_photographs", "csc.science.demo.prepare_photographs"):
        from csc.cli.demo import prepare_photographs
    assert prepare_photographs is demo.prepare_photographs
    assert not hasattr(command, "nope")


def test_old_module_warning_points_at_the_import_statement(monkeypatch):
    _forget(monkeypatch, "csc.dictlearn")
    with _deprecated("csc.dictlearn", "csc.learn.dictlearn") as record:
        from csc.dictlearn import random_crops
    from csc.learn.dictlearn import random_crops as new

    assert random_crops is new
    assert [w.filename for w in record] == [__file__]


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        csc.nope  # noqa: B018


def test_pyproject_lists_every_package():
    """``[tool.setuptools] packages`` is explicit: a package missing from it (a new
    subpackage such as ``csc.science.analysis``) would be left out of the wheel."""
    import pathlib
    import tomllib

    root = pathlib.Path(csc.__file__).parent
    listed = set(tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root.parent).parts) for p in root.rglob("__init__.py")}
    assert found <= listed
