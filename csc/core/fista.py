r"""The FISTA iteration of convolutional BPDN (SPORCO 0.2.2 ``pgm.cbpdn.ConvBPDN``), written once for
every back end.

For each image s and kernels d_k, F(x) = f(x) + λ g(x) with f the data term and g the weighted
ℓ1 norm is minimised by the proximal gradient method with Nesterov momentum (Beck & Teboulle
2009); the equations, the line searches and the stopping rule are in the docstring of
:mod:`csc.problems.fista`, the solver front end (:class:`csc.ConvBPDNFISTA`). :class:`FISTALoop`
runs the iteration over a back end's working set (:class:`csc.backends.torch_fista.TorchFISTA`,
:class:`csc.backends.numba_fista.FusedFISTA`): per-image L, momentum, line searches,
statistics, stopping and retiring.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from csc.core.options import FISTAOptions

__all__ = ["FISTALoop"]

#: the front end's names that this module held before the layers (csc 0.1), now in csc.problems.fista
_MOVED_NAMES = ("ConvBPDNFISTA", "FISTAResult", "FISTAStats", "SPORCO_FISTA_STATS_NAMES")


def __getattr__(name: str):
    """The old import path ``csc.core.fista.ConvBPDNFISTA`` (…), deprecated: the front end moved
    to :mod:`csc.problems.fista` (loaded by ``import csc``; core imports nothing above it)."""
    if name in _MOVED_NAMES and "csc.problems.fista" in sys.modules:
        from csc._compat import warn_moved

        warn_moved(f"csc.core.fista.{name}", f"csc.problems.fista.{name}")
        return getattr(sys.modules["csc.problems.fista"], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FISTALoop:
    """The FISTA iteration over a working set ``ws`` (:class:`TorchFISTA` or the fused one):
    per-image L, momentum t, line searches, statistics, stopping and retiring."""

    def __init__(self, ws, lmbda: float, opts: FISTAOptions, L: np.ndarray, out):
        self.ws, self.lmbda, self.opts, self.out = ws, lmbda, opts, out
        n = ws.n
        self.idx = np.arange(n)
        self.L, self.t, self.Tk = L, np.ones(n), np.zeros(n)
        self.F, self.Q, self.nbt = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        self.obj = self.obj_prev = None  # (n, 3) objective, fidelity, ℓ1 (monotone FISTA)

    def run(self, max_iter: int) -> None:
        opts, ws = self.opts, self.ws
        t0 = time.perf_counter()
        if opts.backtrack == "robust":
            ws.init_robust()
        for k in range(max_iter):
            ws.start_iteration()
            if opts.monotone:
                if k == 0:
                    self.obj = self._objective(None)
                self.obj_prev = self.obj.copy()
            if opts.backtrack == "robust":
                self._robust(k)
            else:
                if opts.backtrack == "standard":
                    ws.gradient()
                    self._line_search(k)
                else:
                    ws.gradient()
                    self._xstep(k, None)
                self._ystep(k)
            r = ws.residual()
            if self.out.rows is not None:
                self._record(k, r, time.perf_counter() - t0)
            tol = opts.tau0 / (1.0 + k) if opts.auto_stop else opts.rel_stop_tol
            done = r < tol
            if k == max_iter - 1:
                done[:] = True
            if done.any():
                self._retire(done, k + 1)
            if ws.n == 0:
                break

    def _objective(self, sel) -> np.ndarray:
        dfd, l1 = self.ws.objective(sel)
        return np.stack([dfd + self.lmbda * l1, dfd, l1], axis=1)

    def _xstep(self, k: int, sel) -> None:
        """Proximal gradient step of the selected images, with monotone FISTA's check."""
        L = self.L if sel is None else self.L[sel]
        self.ws.prox_step(L, sel)
        if self.opts.monotone and k > 0:
            self.ws.keep_candidate(sel)
            new = self._objective(sel)
            prev = self.obj_prev if sel is None else self.obj_prev[sel]
            worse = prev[:, 0] < new[:, 0]
            new[worse] = prev[worse]
            if sel is None:
                self.obj = new
            else:
                self.obj[sel] = new
            self.ws.revert(sel, worse)

    def _accept(self, sel, f: np.ndarray, Q: np.ndarray, searching: np.ndarray) -> None:
        """Record a trial's F and Q; raise L of the selected images with F > Q; stop the others' search."""
        rows = np.flatnonzero(searching) if sel is not None else np.arange(searching.size)
        self.F[rows], self.Q[rows] = f, Q
        self.nbt[rows] += 1
        bad = f > Q
        self.L[rows[bad]] *= self.opts.increase
        searching[rows[~bad]] = False

    def _trial_terms(self, sel):
        f, fy, lin, dxy2 = self.ws.backtrack_terms(sel)
        L = self.L if sel is None else self.L[sel]
        return f, fy + lin + (L / 2.0) * dxy2

    def _line_search(self, k: int) -> None:
        """Standard backtracking (``BacktrackStandard.update`` without its y-step)."""
        searching = np.ones(self.ws.n, dtype=bool)
        self.nbt[:] = 0
        for _ in range(self.opts.backtrack_max_iter):
            sel = None if searching.all() else searching.copy()
            self._xstep(k, sel)
            f, Q = self._trial_terms(sel)
            self._accept(sel, f, Q, searching)
            if not searching.any():
                break

    def _robust(self, k: int) -> None:
        """Robust backtracking (``BacktrackRobust.update``)."""
        self.L *= self.opts.gamma_d
        searching = np.ones(self.ws.n, dtype=bool)
        self.nbt[:] = 0
        t, T = np.zeros_like(self.L), np.zeros_like(self.L)
        for _ in range(self.opts.backtrack_max_iter):
            sel = None if searching.all() else searching.copy()
            rows = np.flatnonzero(searching)
            L, Tk = self.L[rows], self.Tk[rows]
            t[rows] = (1.0 + np.sqrt(1.0 + 4.0 * L * Tk)) / (2.0 * L)
            T[rows] = Tk + t[rows]
            self.ws.robust_point(sel, Tk, t[rows], T[rows])
            self.ws.gradient(sel)
            self._xstep(k, sel)
            f, Q = self._trial_terms(sel)
            self._accept(sel, f, Q, searching)
            if not searching.any():
                break
        self.Tk = T
        self.ws.robust_update(t * self.L)

    def _ystep(self, k: int) -> None:
        o = self.opts
        tprv = self.t
        if o.momentum == "nesterov":
            self.t = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * tprv ** 2))
        else:
            a = o.momentum_b if o.momentum == "linear" else o.momentum_a
            self.t = np.full_like(tprv, (k + a) / o.momentum_b)
        c = (tprv - 1.0) / self.t
        self.ws.momentum(c, tprv / self.t if (o.monotone and k > 0) else None)

    def _record(self, k: int, r: np.ndarray, elapsed: float) -> None:
        obj = self.obj if self.opts.monotone else self._objective(None)
        for j, i in enumerate(self.idx):
            self.out.rows[i].append((k, *obj[j], r[j], self.F[j], self.Q[j], self.nbt[j], self.L[j], elapsed))

    def _retire(self, done: np.ndarray, iters: int) -> None:
        self.out.retire(self.idx[done], self.ws.codes(done), self.L[done], iters)
        keep = ~done
        self.ws.keep(keep)
        self.idx = self.idx[keep]
        for name in ("L", "t", "Tk", "F", "Q", "nbt"):
            setattr(self, name, getattr(self, name)[keep])
        for name in ("obj", "obj_prev"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name)[keep])
