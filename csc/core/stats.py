"""Statistics tables: one record of arrays per solve, one array per statistic."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["StatsTable", "CodingStats"]


class StatsTable:
    """Methods shared by the statistics dataclasses (:class:`csc.IterationStats`, the
    learners' stats): length, JSON-ready lists and construction from rows of dicts.
    Subclasses are dataclasses of arrays with an ``iteration`` field."""

    def __len__(self) -> int:
        return len(self.iteration)

    def to_dict(self) -> dict[str, list]:
        """Plain lists (NaN as None), for JSON."""
        out = {}
        for f in fields(self):
            vals = np.asarray(getattr(self, f.name)).tolist()
            out[f.name] = [None if isinstance(v, float) and math.isnan(v) else v for v in vals]
        return out

    @classmethod
    def from_rows(cls, rows: list[dict[str, float]]):
        """From one dict per iteration (a missing statistic is NaN)."""
        cols = {}
        for f in fields(cls):
            vals = [r.get(f.name, float("nan")) for r in rows]
            cols[f.name] = np.asarray(vals, dtype=np.int64 if f.name == "iteration" else np.float64)
        return cls(**cols)


@dataclass(frozen=True)
class CodingStats(StatsTable):
    """The columns every coding solve records (SPORCO's ``Iter``, ``ObjFun``, ``DFid``,
    ``RegL1``, ``PrimalRsdl``, ``DualRsdl``); solvers' records add their own after these."""

    iteration: np.ndarray
    objective: np.ndarray
    data_fidelity: np.ndarray
    l1: np.ndarray
    primal_residual: np.ndarray
    dual_residual: np.ndarray
