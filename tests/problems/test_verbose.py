"""CBPDNOptions(verbose=True): SPORCO's iteration table, one row per iteration and image, with
the numbers of result.stats (issue 33: long solves show a sign of life)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import csc
from csc.problems.cbpdn import IterationTable


def _problem():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(4, 5, 5, generator=g, dtype=torch.float64),
            torch.randn(2, 16, 16, generator=g, dtype=torch.float64))


def _table(text: str) -> np.ndarray:
    lines = text.strip().splitlines()
    assert lines[0].split()[-7:] == list(IterationTable.COLUMNS)
    return np.array([[float(v) for v in ln.split()] for ln in lines[1:]])


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_verbose_rows_are_the_statistics(capsys, backend):
    D, S = _problem()
    r = csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=6, verbose=True, backend=backend)).solve(S)
    rows = _table(capsys.readouterr().out)
    for img in range(2):
        mine = rows[rows[:, 0] == img]
        st = r.stats[img]
        assert mine[:, 1].tolist() == st.iteration.tolist()
        for col, name in zip(range(2, 9), ("objective", "data_fidelity", "l1", "primal_residual", "dual_residual")):
            assert np.allclose(mine[:, col], getattr(st, name), rtol=1e-3, atol=0), name
        assert np.allclose(mine[:, 7], st.rho, rtol=1e-3)


def test_verbose_without_recorded_statistics_and_coupled(capsys):
    D, S = _problem()
    csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=4, verbose=True, record_stats=False)).solve(S[0])
    assert _table(capsys.readouterr().out).shape == (4, 7)  # one image: no img column
    r = csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=3, verbose=True, coupling="sporco")).solve(S)
    rows = _table(capsys.readouterr().out)
    assert rows.shape == (3, 7) and np.allclose(rows[:, 1], r.stats[0].objective, rtol=1e-3)


def test_quiet_by_default(capsys):
    D, S = _problem()
    csc.ConvBPDN(D, 0.1, csc.CBPDNOptions(max_iter=3)).solve(S)
    assert capsys.readouterr().out == ""


def test_table_to_a_stream():
    out = io.StringIO()
    IterationTable(batch=False, stream=out)(0, torch.tensor([0]), torch.ones(8, 1))
    assert out.getvalue().splitlines()[1].split() == ["0"] + ["1.000e+00"] * 6
