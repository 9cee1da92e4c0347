"""The SPORCO example ports (``examples/sporco/``): each one's quick mode against SPORCO 0.2.2.

Every port runs its reduced size with ``compare=True``: csc and SPORCO on the same data
(float64) with the same options, and its ``EXPECT`` holds: the codes' max relative
difference, the final objective's relative difference and the PSNR's difference in dB (ports
whose iterates are SPORCO's: codes 1e-10, objective 1e-12; each port's docstring says what it
expects and why). A port whose ``NOT_YET`` names what csc lacks is skipped with that reason. Without SPORCO the ports have no data (they load SPORCO's images and
dictionaries): the tests skip.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

@pytest.fixture(scope="module", autouse=True)
def one_thread_estimate_plans():
    """One torch thread (the ports' timing setting; many threads on a shared machine only
    contend) and SPORCO's FFTW plans by ESTIMATE (MEASURE times candidate plans: seconds per
    shape, and plans that differ only by rounding)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from sporco import fft as sp_fft
    except ImportError:
        sp_fft = None
    effort = sp_fft.pyfftw_planner_effort if sp_fft else None
    if sp_fft:
        sp_fft.pyfftw_planner_effort = "FFTW_ESTIMATE"
    yield
    torch.set_num_threads(threads)
    if sp_fft:
        sp_fft.pyfftw_planner_effort = effort


PORTS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "examples" / "sporco").glob("[a-z]*.py"))


@pytest.mark.parametrize("name", PORTS)
def test_quick_matches_sporco(name):
    pytest.importorskip("sporco")
    mod = importlib.import_module(f"examples.sporco.{name}")
    if getattr(mod, "NOT_YET", None):
        pytest.skip(mod.NOT_YET)
    if name == "onlinecdl_clr_cupy" and not __import__("torch").cuda.is_available():
        pytest.skip("without CUDA this port is onlinecdl_clr (its device path is the CPU)")
    out = mod.run(quick=True, compare=True)
    assert out["script"] == name and out["quick"]
    for key, tol in mod.EXPECT.items():
        assert out["diff"][key] <= tol, (key, out["diff"])
        if "unmasked" in out and key in out["unmasked"]:  # a script's first learner
            assert out["unmasked"][key] <= tol, (key, out["unmasked"])
    assert out["csc"]["nonzero"] > 0, "the quick problem must have non-zero codes (else the comparison is empty)"
    assert out["csc"]["time"] > 0 and out["sporco"]["time"] > 0


def test_table_lists_the_40_scripts():
    """The benchmark's table names SPORCO's 40 scripts, and every port is one of them."""
    from benchmarks.sporco_examples import SCRIPTS

    assert len(SCRIPTS) == 40
    assert set(PORTS) <= set(SCRIPTS)


def test_cbpdndl_grd_with_sporcos_default_u0(monkeypatch):
    """SPORCO's ``cbpdndl_grd`` with the consensus step's default U0 (Y0/ρ): csc's
    ``DictLearn(coding=ConvBPDNGradReg(..., GradRegOptions.from_sporco({"L1Weight": (1, 1, 1, 1, K)})))``
    gives SPORCO's dictionary (the learners take SPORCO's per-kernel ``L1Weight`` layout)."""
    pytest.importorskip("sporco")
    from examples.sporco import cbpdndl_grd

    monkeypatch.setattr(cbpdndl_grd, "SCRIPT_U0", False)
    out = cbpdndl_grd.run(quick=True, compare=True)
    for key, tol in cbpdndl_grd.EXPECT.items():
        assert out["diff"][key] <= tol, (key, out["diff"])
