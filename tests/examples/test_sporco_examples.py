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

PORTS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "examples" / "sporco").glob("[a-z]*.py"))


@pytest.mark.parametrize("name", PORTS)
def test_quick_matches_sporco(name):
    pytest.importorskip("sporco")
    mod = importlib.import_module(f"examples.sporco.{name}")
    if getattr(mod, "NOT_YET", None):
        pytest.skip(mod.NOT_YET)
    out = mod.run(quick=True, compare=True)
    assert out["script"] == name and out["quick"]
    for key, tol in mod.EXPECT.items():
        assert out["diff"][key] <= tol, (key, out["diff"])
    assert out["csc"]["time"] > 0 and out["sporco"]["time"] > 0


def test_table_lists_the_40_scripts():
    """The benchmark's table names SPORCO's 40 scripts, and every port is one of them."""
    from benchmarks.sporco_examples import SCRIPTS

    assert len(SCRIPTS) == 40
    assert set(PORTS) <= set(SCRIPTS)
