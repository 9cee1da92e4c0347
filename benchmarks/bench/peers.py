"""Time to accuracy of csc and its peers on one CBPDN problem (``csc bench --peers``, benchmarks/time_to_accuracy.py).

Every engine gets the same image s, dictionary, λ and ℓ1 weights and records, per iteration,
its wall time and the objective F(x) = ½‖Σ d_k * x_k − s‖² + λ‖x‖₁ of its own iterate (each
engine's own evaluation; SPORCO's, csc's and SCICO's count their objective evaluation in
their time, DiCoDiLe's does not). ADMM engines are measured, by default (``on="y"``), at
their sparse split variable y, the code SPORCO and csc return (SPORCO's ``AuxVarObj``,
csc's ``objective_on_y``, SCICO's z): y reaches F* in far fewer iterations than the dense x
(gry: 1e-3 in 65 iterations on y, 214 on x). ``on="x"`` measures the dense x instead. Peers are optional: an engine whose package is missing is
skipped with one line. Engines: ``csc-admm``, ``csc-fista`` (fused CPU back end),
``sporco-admm`` (``admm.cbpdn.ConvBPDN``), ``sporco-pgm`` (``pgm.cbpdn.ConvBPDN``),
``sporco-par`` (``admm.parcbpdn.ParConvBPDN``, one process), ``csc-admm-f32`` and
``sporco-admm-f32`` (the ADMM engines computing in float32; F* stays float64's), ``scico`` (ADMM with its
``FBlockCircularConvolveSolver``, its DFT-domain solver for Σ_k d_k * x_k, on JAX CPU) and ``dicodile`` (greedy coordinate descent, which
solves the non-negative problem with codes that do not cross the boundary: csc is run on
that problem too, ``csc-admm-nn``). Run single-threaded: :func:`single_thread` before
anything imports JAX.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

__all__ = ["ENGINES", "single_thread", "run_engine", "time_to", "reference_objective", "problem_case"]

ENGINES = ("csc-admm", "csc-fista", "sporco-admm", "sporco-pgm", "sporco-par", "scico", "dicodile",
           "csc-admm-f32", "sporco-admm-f32")
LEVELS = (1e-2, 1e-3, 1e-4)
ON = ("y", "x")  # where the ADMM engines' objective is evaluated


def single_thread() -> None:
    """One thread for torch, numba, pyFFTW (SPORCO's) and XLA (JAX reads XLA_FLAGS when first imported)."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    try:
        from sporco import fft as sp_fft

        sp_fft.pyfftw_threads = 1
    except ImportError:
        pass


def problem_case(name: str):
    """(image (H, W), dictionary (K, kh, kw), λ, description) of a named case: ``gry`` (SPORCO's
    cbpdn_gry example: kodim23 crop, G:12x12x36, λ 5e-2), ``256k144`` (barbara 256², random
    12×12×144, λ 0.05: ``csc bench``'s), ``512k36`` (barbara 512², random 12×12×36, λ 0.05)."""
    from sporco import signal, util

    if name == "gry":
        img = util.ExampleImages().image("kodim23.png", scaled=True, gray=True, idxexp=np.s_[160:416, 60:316])
        D = util.convdicts()["G:12x12x36"]
        lmbda, desc = 5e-2, "kodim23[160:416, 60:316] gray, highpass tikhonov(10, 16); G:12x12x36; λ 5e-2"
        _, sh = signal.tikhonov_filter(img, 10.0, 16)
    else:
        size, K = (256, 144) if name == "256k144" else (512, 36)
        img = util.ExampleImages().image("barbara.png", scaled=True, gray=True)
        h0, w0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        img = img[h0:h0 + size, w0:w0 + size]
        _, sh = signal.tikhonov_filter(img, 5.0, 16)
        D = np.random.RandomState(12345).randn(12, 12, K)
        D /= np.sqrt(np.sum(D ** 2, axis=(0, 1), keepdims=True))
        lmbda, desc = 0.05, f"barbara central {size}², highpass tikhonov(5, 16); randn(12,12,{K}) unit norm; λ 0.05"
    return np.ascontiguousarray(sh, dtype=np.float64), np.ascontiguousarray(np.moveaxis(D, -1, 0), dtype=np.float64), lmbda, desc


# ------------------------------------------------------------------ engines
def _csc_admm(s, D, lmbda, iters, nonneg=False, tol=0.0, on="y", dtype="float64"):
    import torch

    import csc

    opts = csc.CBPDNOptions(max_iter=iters, rel_stop_tol=tol, nonneg=nonneg, no_boundary_cross=nonneg,
                            objective_on_y=on == "y", backend="numba", dtype=getattr(torch, dtype))
    st = csc.ConvBPDN(torch.from_numpy(D), lmbda, opts).solve(torch.from_numpy(s)).stats[0]
    return st.time, st.objective


def _csc_fista(s, D, lmbda, iters, L):
    import torch

    from csc import ConvBPDNFISTA, FISTAOptions

    opts = FISTAOptions(max_iter=iters, rel_stop_tol=0.0, L=L, backend="numba", dtype=torch.float64)
    st = ConvBPDNFISTA(torch.from_numpy(D), lmbda, opts).solve(torch.from_numpy(s)).stats[0]
    return st.time, st.objective


def _sporco(kind, s, D, lmbda, iters, L, on="y"):
    if kind.endswith("-f32"):  # SPORCO computes in its inputs' dtype
        kind, s, D = kind[:-4], s.astype(np.float32), D.astype(np.float32)
    Ds = np.ascontiguousarray(np.moveaxis(D, 0, -1))
    on_y = {"AuxVarObj": on == "y", "fEvalX": on == "x", "gEvalY": on == "y"}
    if kind == "sporco-admm":
        from sporco.admm import cbpdn

        b = cbpdn.ConvBPDN(Ds, s, lmbda, cbpdn.ConvBPDN.Options({"MaxMainIter": iters, "RelStopTol": 0.0, **on_y}),
                           dimK=0)
    elif kind == "sporco-pgm":
        from sporco.pgm import cbpdn as pcb

        b = pcb.ConvBPDN(Ds, s, lmbda, pcb.ConvBPDN.Options({"MaxMainIter": iters, "RelStopTol": 0.0, "L": L}), dimK=0)
    else:
        from sporco.admm import parcbpdn

        b = parcbpdn.ParConvBPDN(Ds, s, lmbda, opt=parcbpdn.ParConvBPDN.Options(
            {"MaxMainIter": iters, "RelStopTol": 0.0, "fEvalX": on == "x", "gEvalY": on == "y"}),
            nproc=1, ngrp=1, dimK=0)
    b.solve()
    its = b.getitstat()
    return np.asarray(its.Time), np.asarray(its.ObjFun)


def scico_rho0(lmbda: float) -> float:
    """SCICO's ρ scale here: SPORCO's initial ρ, 50 λ + 1 (SCICO's ADMM keeps ρ fixed)."""
    return 50.0 * lmbda + 1.0


def _scico(s, D, lmbda, iters, on="y", rho=None):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from scico import functional, linop, loss
    from scico.optimize.admm import ADMM, FBlockCircularConvolveSolver

    K, H, W = D.shape[0], *s.shape
    C = linop.CircularConvolve(h=jnp.asarray(D), input_shape=(K, H, W), ndims=2, input_dtype=jnp.float64)
    A = linop.Sum(input_shape=C.output_shape, axis=0, input_dtype=jnp.float64) @ C
    _check_scico_operator(A, D, (K, H, W))
    f = loss.SquaredL2Loss(y=jnp.asarray(s), A=A)
    solver = ADMM(f=f, g_list=[lmbda * functional.L1Norm()], C_list=[linop.Identity(A.input_shape, input_dtype=jnp.float64)],
                  rho_list=[scico_rho0(lmbda) if rho is None else rho], x0=jnp.zeros((K, H, W)), maxiter=iters,
                  subproblem_solver=FBlockCircularConvolveSolver(), itstat_options={"display": False, "period": 1})
    if on == "x":
        solver.solve()
        hist = solver.itstat_object.history(transpose=True)
        return np.asarray(hist.Time), np.asarray(hist.Objective)
    objective = jax.jit(lambda z: f(z) + lmbda * functional.L1Norm()(z))
    times, objs, t0 = [], [], time.perf_counter()
    for _ in range(iters):  # solve()'s loop, with the objective of the sparse split variable z
        solver.step()
        objs.append(float(objective(solver.z_list[0])))
        times.append(time.perf_counter() - t0)
    return np.asarray(times), np.asarray(objs)


def _check_scico_operator(A, D, shape) -> None:
    """SCICO's circular convolution must be csc's (kernels at the top-left origin)."""
    import torch

    from csc.core import ops

    x = np.random.RandomState(0).randn(*shape)
    ours = ops.synthesis(torch.from_numpy(D), torch.from_numpy(x)[None])[0].numpy()
    if not np.allclose(np.asarray(A(x)), ours, atol=1e-8 * np.abs(ours).max()):
        raise RuntimeError("scico: its CircularConvolve is not csc's convolution (kernel origin)")


def _dicodile(s, D, lmbda, iters):
    try:
        from dicodile.update_z.coordinate_descent import coordinate_descent
        from dicodile.utils.csc import reconstruct
    except RuntimeError as exc:  # mpi4py is a hard import of the package and needs an MPI library
        raise ImportError(f"dicodile does not import: {str(exc).splitlines()[0]}") from None

    Dd = _dicodile_kernels(D, reconstruct)
    out = coordinate_descent(s[None], Dd, lmbda, z_positive=True, timing=True, tol=1e-12,
                             max_iter=10 ** 9, timeout=iters, strategy="greedy")
    p_obj = np.asarray(out[3])
    return p_obj[:, 1], p_obj[:, 3]


def _dicodile_kernels(D, reconstruct):
    """D (K, 1, kh, kw) oriented so that DiCoDiLe's reconstruction is csc's with codes that do not cross the boundary."""
    import torch

    from csc.core import ops

    K, kh, kw = D.shape
    z = np.abs(np.random.RandomState(1).randn(K, 20, 20))
    full = np.zeros((1, K, 20 + kh - 1, 20 + kw - 1))
    full[0, :, :20, :20] = z
    ours = ops.synthesis(torch.from_numpy(D), torch.from_numpy(full))[0].numpy()
    for cand in (D, D[:, ::-1, ::-1]):
        Dd = np.ascontiguousarray(cand[:, None])
        if np.allclose(reconstruct(z, Dd)[0], ours):
            return Dd
    raise RuntimeError("dicodile: no kernel orientation reproduces csc's convolution")


def lipschitz(D, shape) -> float:
    """max over frequencies of Σ_k |D̂_k|²: the gradient's Lipschitz constant, FISTA's L (no line search)."""
    import torch

    from csc.core import ops

    return float(ops.gram_diagonal(ops.kernel_dft(torch.from_numpy(D), shape)).max())


def run_engine(name: str, s, D, lmbda, iters: int, L: float, on: str = "y",
               rho: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(times, objectives) per iteration of engine ``name`` (ImportError when its package is missing);
    ADMM engines' objectives on ``on`` (module docstring); ``rho``: SCICO's fixed ρ (default
    :func:`scico_rho0`); for ``dicodile`` ``iters`` is its time limit in seconds (it logs
    coordinate updates, not iterations)."""
    if on not in ON:
        raise ValueError(f"on: expected one of {ON}, got {on!r}")
    runners: dict[str, Callable] = {
        "csc-admm": lambda: _csc_admm(s, D, lmbda, iters, on=on),
        "csc-admm-f32": lambda: _csc_admm(s, D, lmbda, iters, on=on, dtype="float32"),
        "csc-admm-nn": lambda: _csc_admm(s, D, lmbda, iters, nonneg=True, on=on),
        "csc-fista": lambda: _csc_fista(s, D, lmbda, iters, L),
        "scico": lambda: _scico(s, D, lmbda, iters, on=on, rho=rho),
        "dicodile": lambda: _dicodile(s, D, lmbda, iters),
    }
    if name.startswith("sporco"):
        return _sporco(name, s, D, lmbda, iters, L, on=on)
    return runners[name]()


def reference_objective(s, D, lmbda, iters: int, nonneg: bool = False) -> float:
    """The optimal objective, estimated by a long float64 csc ADMM solve: the lowest objective
    seen on x or on y (y is feasible for the ℓ1 term exactly and usually the lower)."""
    return float(min(np.min(_csc_admm(s, D, lmbda, iters, nonneg=nonneg, tol=1e-7, on=on)[1]) for on in ON))


def time_to(times: np.ndarray, obj: np.ndarray, fstar: float, levels=LEVELS) -> dict[str, dict]:
    """First time and iteration at which (F − F*)/F* ≤ level, per level (None: not reached)."""
    rel = (np.asarray(obj) - fstar) / abs(fstar)
    out = {}
    for lv in levels:
        hit = np.flatnonzero(rel <= lv)
        out[f"{lv:g}"] = None if hit.size == 0 else {"time": float(times[hit[0]]), "iteration": int(hit[0] + 1)}
    return out
