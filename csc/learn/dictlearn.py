r"""Batch convolutional dictionary learning, with SPORCO's ``ConvBPDNDictLearn`` semantics.

Problem (SPORCO ``dictlrn.cbpdndl.ConvBPDNDictLearn``; Ladret, Casanova & Perrinet, eqs. 4–5), for images s_j (H×W) and K kernels d_k (kh×kw):

.. math::
    \min_{\{d_k\},\{x_{jk}\}} \; \tfrac12 \sum_j \Big\| \sum_k d_k * x_{jk} - s_j \Big\|_2^2
    + \lambda \sum_{jk} \| w_k \odot x_{jk} \|_1
    \quad\text{s.t.}\quad d_k \in C,

with C the kernels of support kh×kw and unit ℓ2 norm (optionally zero-mean or
non-negative; :mod:`csc.learn.constraints`). ``*`` is circular convolution with kernels
zero-padded at the top-left origin, so codes and kernels line up with SPORCO's.

Algorithm (SPORCO ``dictlrn.cbpdndl.ConvBPDNDictLearn``, ``xmethod='admm'``): the ADMM
iterations of the coding problem and of the dictionary problem are interleaved, their
state (variables, penalties, momentum, iteration counters) carried from one outer
iteration to the next. One outer iteration j:

1. **Coding step** — ``cbpdn.max_iter`` (default 1) ADMM iterations of CBPDN over *all
   images jointly*: one penalty ρ, global residuals
   :math:`r = \|X - Y\| / \max(\|X\|, \|Y\|)`, :math:`s = \rho\|Y_{prev} - Y\| / (\rho\|U\|)`
   and one adaptive-ρ decision for the whole batch (the iteration of :mod:`csc.core.admm`: x-step, relaxation, y-step, dual, residuals, adaptive ρ, stopping, with the norms
   taken over every image). This is SPORCO's multi-image semantics and differs on purpose
   from :class:`csc.ConvBPDN`, which solves each image as if alone. The x-step solves
   :math:`(\hat D^H\hat D + \rho I)\hat x_j = \hat D^H \hat s_j + \rho\,\mathrm{DFT}(y_j - u_j)`
   by Sherman–Morrison; y is the soft threshold of :math:`\alpha x + (1-\alpha) y + u`.
   Statistics ObjFun/DFid/RegL1 are SPORCO's, evaluated on x with the dictionary *before*
   this outer iteration's dictionary step.
2. The exactly sparse codes Y are handed to the dictionary step.
3. **Dictionary step** — ``ccmod.max_iter`` (default 1) iterations of

   * ``'pgm'`` (SPORCO ``pgm.ccmod.ConvCnstrMOD``; FISTA with Nesterov momentum in the DFT
     domain): with Ẑ the DFT of the codes, V̂ the extrapolated point,
     :math:`\nabla = \sum_j \overline{\hat Z_j}(\hat Z_j \hat V - \hat S_j)`,
     :math:`D = P_C(\mathrm{IDFT}(\hat V - \nabla / L))`,
     :math:`t' = (1 + \sqrt{1 + 4t^2})/2`, :math:`\hat V = \hat D + \frac{t-1}{t'}(\hat D - \hat D_{prev})`.
   * ``'cns'`` (SPORCO ``admm.ccmod.ConvCnstrMOD_Consensus``; ADMM consensus over the
     images): per image j, :math:`(\hat Z_j^H \hat Z_j + \rho I)\hat x_j = \hat Z_j^H \hat s_j
     + \rho\,\mathrm{DFT}(g - u_j)` (Sherman–Morrison), relaxation
     :math:`a_j = \alpha x_j + (1-\alpha) g`, :math:`g = P_C(\mathrm{mean}_j(a_j + u_j))`,
     :math:`u_j \mathrel{+}= a_j - g`; U starts at G₀/ρ (SPORCO's choice when a
     starting dictionary is given).
4. The cropped, projected dictionary (``pgm``: the new iterate; ``cns``: g) is handed
   back to the coding step.
5. With ``accurate_dfid`` the objective is recomputed after the dictionary step on
   (new dictionary, Y): DFid + λ‖Y‖₁ (unweighted ℓ1, as SPORCO).

With a mask W (``solve(images, mask=W)``; SPORCO ``dictlrn.cbpdndlmd.ConvBPDNMaskDictLearn``,
``xmethod='admm'``) the data term is ½Σ_j‖W_j ⊙ (Σ_k d_k * x_jk − s_j)‖²: the coding step is
mask decoupling over the batch (:class:`csc.learn.coding.JointMaskDcpl`, the two-block
iteration of :mod:`csc.problems.maskdcpl`, options :data:`DICTLEARN_MASKDCPL_DEFAULTS` or a
``coding=csc.ConvBPDNMaskDcpl(...)`` problem's), and the dictionary step

* ``'pgm'`` (SPORCO ``pgm.ccmod.ConvCnstrMODMask``): FISTA as above with the gradient
  :math:`\nabla = \sum_j \overline{\hat Z_j}\,\mathrm{DFT}(W_j^2 \odot \mathrm{IDFT}(\hat Z_j \hat V - \hat S_j))`;
* ``'cns'`` (SPORCO ``admm.ccmodmd.ConvCnstrMODMaskDcpl_Consensus``): the consensus ADMM with a
  second block y₁ⱼ ≈ z_j * d − s_j, y₁ⱼ = ρ(a₁ⱼ + u₁ⱼ − s_j)/(W_j² + ρ)
  (:class:`csc.backends.torch_dictstep.TorchMaskedConsensusOps`).

The masked dictionary steps run the torch arithmetic (also when the coding step runs on the
fused CPU back end).

SPORCO's *effective* defaults are used (they differ from its documentation): the
dictionary step's ρ is 1 (documented as the number of images) and the PGM step
parameter L is 1 (documented as 14 × number of images), because its base classes set
those attributes before the derived classes try to.

Back ends (``cbpdn.backend``, chosen as for :class:`csc.ConvBPDN`: ``"auto"`` follows
``CSC_CBPDN_BACKEND``, else the fused back end on CPU when numba is installed, the torch
loop otherwise and on other devices). The fused CPU back end computes the same
iterations in fewer passes over memory:

* coding step: one planned FFT of y − u, the Sherman–Morrison x-step in place in the DFT
  domain (the data fidelity per DFT row from the same pass), one inverse FFT, and the
  y-step with the dual update, the next FFT input and every residual sum in one pass
  (:mod:`csc.backends.fused`, :mod:`csc.backends.kernels`, :mod:`csc.backends.dl_kernels`);
* ``'pgm'``: while the codes are sparse (nonzeros × kh·kw ≤ B·K·H·W, the usual case)
  the residual Σ_k y_k * v_k − s and the gradient on the kernel support are computed
  from the nonzero codes in the spatial domain, recorded by the y-step, with no FFT of
  the codes; otherwise from rfft2(y) in one pass;
* ``'cns'``: x_j and u_j are kept as DFTs (the transform is linear; only g is
  constrained), so only the K kernel planes are transformed; two passes per iteration.

Both back ends give SPORCO's answers and differ by floating-point rounding only; the
fused one is deterministic and independent of the number of threads (its FFTW plans are
estimated, not timed).

Checkpoints (:meth:`DictLearn.solve` with ``checkpoint=``) hold every state variable, the
statistics so far and JSON metadata in one pickle-free ``.npz``, written atomically; a
resumed run computes bit for bit what the uninterrupted run computes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from csc.backends.registry import dictionary_ops, use_fused

from csc.core import ops
from csc.core.checks import (
    DeviceCopies, as_float_tensor, check_bool, check_image_size, check_images, check_int, check_ndim,
    check_nonnegative, check_not_channels_last, check_colour_images, check_learned, on_device, prepare_dictionary,
    working_device,
)
from csc.learn.constraints import KernelConstraint, dictionary_constraint
from csc.dictionary.io import atomic_write
from csc.core.options import CBPDNOptions
from csc.learn.options import (  # noqa: F401  (the learner's options, re-exported)
    DICTLEARN_CBPDN_DEFAULTS,
    DICTLEARN_FISTA_DEFAULTS,
    DICTLEARN_MASKDCPL_DEFAULTS,
    DictLearnOptions,
    DictUpdateOptions,
    _jsonable,
)
from csc.core.stats import StatsTable
from csc.learn.coding import JointCBPDN, JointMaskDcpl, read_row
from csc.learn.dictstep import ConsensusDictStep, ISMDictStep, MaskedConsensusDictStep, PGMDictStep
from csc.learn.fista_coding import JointFISTA

__all__ = [
    "DictLearn",
    "DictLearnOptions",
    "DictUpdateOptions",
    "DictLearnResult",
    "DictLearnStats",
    "SPORCO_DICTLEARN_STATS_NAMES",
    "DICTLEARN_CBPDN_DEFAULTS",
    "DICTLEARN_MASKDCPL_DEFAULTS",
    "random_crops",
    "plot_objective",
    "load_checkpoint",
]

CHECKPOINT_FORMAT = "csc-dictlearn-checkpoint"
CHECKPOINT_VERSION = 1

# ========================================================================= statistics
#: csc :class:`DictLearnStats` field → SPORCO ``ConvBPDNDictLearn`` ``IterationStats`` field.
SPORCO_DICTLEARN_STATS_NAMES: dict[str, str] = {
    "iteration": "Iter",
    "objective": "ObjFun",
    "data_fidelity": "DFid",
    "l1": "RegL1",
    "constraint": "Cnstr",
    "x_primal_residual": "XPrRsdl",
    "x_dual_residual": "XDlRsdl",
    "x_rho": "XRho",
    "d_primal_residual": "DPrRsdl",
    "d_dual_residual": "DDlRsdl",
    "d_rho": "DRho",
    "d_L": "D_L",
    "d_residual": "D_Rsdl",
    "d_F_backtrack": "D_F_Btrack",
    "d_Q_backtrack": "D_Q_Btrack",
    "d_backtrack_iterations": "D_ItBt",
    "x_L": "X_L",
    "x_residual": "X_Rsdl",
    "x_F_backtrack": "X_F_Btrack",
    "x_Q_backtrack": "X_Q_Btrack",
    "x_backtrack_iterations": "X_ItBt",
    "time": "Time",
}


@dataclass(frozen=True)
class DictLearnStats(StatsTable):
    """Per-outer-iteration statistics of :class:`DictLearn` (arrays over iterations).

    SPORCO's fields (:data:`SPORCO_DICTLEARN_STATS_NAMES`). ``objective``,
    ``data_fidelity`` and ``l1`` are the coding step's (on x, before the dictionary step)
    or, with ``accurate_dfid``, recomputed after it. ``x_*`` are the coding step's
    residuals and penalty (before its update); ``d_primal_residual``, ``d_dual_residual``
    and ``d_rho`` the ``'cns'`` step's (NaN for ``'pgm'``); ``d_L`` and ``d_residual``
    (squared fixed-point residual) the ``'pgm'`` step's (NaN for ``'cns'``), with
    ``d_F_backtrack``, ``d_Q_backtrack``, ``d_backtrack_iterations`` its line search's
    (NaN without ``ccmod.backtrack``);
    ``constraint`` is ‖P_C(D) − D‖ of the dictionary step's iterate; ``x_L``,
    ``x_residual`` (squared fixed-point residual), ``x_F_backtrack``, ``x_Q_backtrack`` and
    ``x_backtrack_iterations`` the FISTA coding step's (``xmethod='pgm'``; NaN for ADMM, the
    last three NaN without backtracking) and the ``x_*`` residuals and penalty NaN with it;
    ``time`` is seconds since the start of learning (summed over resumed runs).
    """

    iteration: np.ndarray
    objective: np.ndarray
    data_fidelity: np.ndarray
    l1: np.ndarray
    constraint: np.ndarray
    x_primal_residual: np.ndarray
    x_dual_residual: np.ndarray
    x_rho: np.ndarray
    d_primal_residual: np.ndarray
    d_dual_residual: np.ndarray
    d_rho: np.ndarray
    d_L: np.ndarray
    d_residual: np.ndarray
    d_F_backtrack: np.ndarray
    d_Q_backtrack: np.ndarray
    d_backtrack_iterations: np.ndarray
    x_L: np.ndarray
    x_residual: np.ndarray
    x_F_backtrack: np.ndarray
    x_Q_backtrack: np.ndarray
    x_backtrack_iterations: np.ndarray
    time: np.ndarray


@dataclass
class DictLearnResult:
    """Result of :meth:`DictLearn.solve`.

    Attributes
    ----------
    dictionary : (K, kh, kw)
        The learned, constrained dictionary (SPORCO's ``getdict()``).
    stats : DictLearnStats
        One row per outer iteration (including those of a resumed run's earlier part).
    codes : (B, K, H, W)
        The coding step's sparse y after the last iteration (computed with the
        dictionary of the previous iteration).
    iterations : int
        Outer iterations done in total.
    """

    dictionary: torch.Tensor
    stats: DictLearnStats
    codes: torch.Tensor
    iterations: int

    def reconstruct(self, codes: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_k d_k * codes_k, (B, H, W) ((B, C, H, W) for colour or joint codes (B, C, K, H, W)),
        with the learned dictionary."""
        c = self.codes if codes is None else codes
        flat = c.reshape(-1, *c.shape[-3:])
        out = ops.synthesis(self.dictionary.to(c.device, c.dtype), flat)
        return out.reshape(c.shape[:-3] + out.shape[-2:]) if c.ndim == 5 else out


# ========================================================================= the steps
def _use_fused(opts: CBPDNOptions, device: torch.device) -> bool:
    """Whether the learner runs its fused CPU back end (``cbpdn.backend``, as
    :class:`csc.ConvBPDN`: :func:`csc.backends.registry.use_fused`)."""
    return use_fused(opts.backend, device, "learning")


def _dictionary_step(D0: torch.Tensor, Sf: torch.Tensor, shape, opts: "DictLearnOptions", cons: KernelConstraint,
                     fused: bool, masked: tuple[torch.Tensor, Any] | None = None):
    """The dictionary step ``opts.dmethod`` (:mod:`csc.learn.dictstep`) on the chosen back end
    (its operators: :func:`csc.backends.registry.dictionary_ops`); ``masked`` = (images (B, H, W),
    W² (a float or (1 or B, H, W))): the masked steps (SPORCO ``pgm.ccmod.ConvCnstrMODMask``,
    ``admm.ccmodmd.ConvCnstrMODMaskDcpl_Consensus``), whose arithmetic is the torch back end's
    on every device, as that of the 'pgm' step with backtracking (``ccmod.backtrack``)."""
    c = opts.ccmod
    if masked is not None and c.backtrack is not None:
        raise ValueError("ccmod: backtracking of the dictionary step is not offered with a mask")
    if masked is not None and opts.dmethod == "ism":
        raise ValueError("dmethod: masked learning takes the 'pgm' or 'cns' dictionary step, not 'ism'")
    ops = dictionary_ops(opts.dmethod, Sf, shape, D0, cons, fused and c.backtrack is None, c.relax, masked)
    if masked is not None:
        if opts.dmethod == "pgm":
            return PGMDictStep(ops, D0, c, cons)
        step = MaskedConsensusDictStep(ops, D0, c, cons, Sf.shape[0], shape)
        if c.zero_dual:
            ops.zero_dual()
        return step
    if opts.dmethod == "pgm":
        return PGMDictStep(ops, D0, c, cons)
    step = ISMDictStep(ops, D0, c, cons, shape) if opts.dmethod == "ism" else ConsensusDictStep(
        ops, D0, c, cons, Sf.shape[0], shape)
    if c.zero_dual:
        ops.zero_dual()
    return step


# ===================================================================== checkpoints
def _to_numpy(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def save_checkpoint(path: str | Path, arrays: Mapping[str, Any], metadata: Mapping[str, Any]) -> Path:
    """Write a pickle-free checkpoint (arrays + JSON metadata) atomically."""
    payload = {k: _to_numpy(v) for k, v in arrays.items()}
    payload["metadata"] = np.array(json.dumps(_jsonable(dict(metadata)), sort_keys=True))
    return atomic_write(path, lambda f: np.savez(f, **payload))


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by a learner: (arrays, metadata)."""
    from csc.dictionary.io import json_metadata, read_npz

    arrays = read_npz(path, "checkpoint")
    if "metadata" not in arrays:
        raise ValueError(f"checkpoint: {str(path)!r} has no metadata")
    meta = json_metadata(arrays.pop("metadata"), path, "checkpoint")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {str(path)!r} is not a csc learner checkpoint")
    return arrays, meta


def tensor_sha256(t: torch.Tensor) -> str:
    a = np.ascontiguousarray(t.detach().cpu().numpy())
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def _rows_to_arrays(rows: list[dict[str, float]], names) -> dict[str, np.ndarray]:
    return {f"stats.{n}": np.asarray([r.get(n, float("nan")) for r in rows], dtype=np.float64) for n in names}


def _rows_from_arrays(arrays: Mapping[str, np.ndarray], names) -> list[dict[str, float]]:
    cols = {n: arrays[f"stats.{n}"] for n in names if f"stats.{n}" in arrays}
    count = len(next(iter(cols.values()))) if cols else 0
    return [{n: float(c[i]) for n, c in cols.items()} for i in range(count)]


def _check_resume(meta: Mapping[str, Any], expect: Mapping[str, Any], path) -> None:
    for key, val in expect.items():
        if _jsonable(val) != meta.get(key):
            raise ValueError(
                f"resume: checkpoint {str(path)!r} was made with a different {key} "
                f"({meta.get(key)!r} vs {_jsonable(val)!r}); use the same settings or start afresh"
            )


def _checkpoint_payload(arrays: Mapping[str, Any], rows: list[dict[str, float]], names, fingerprint: Mapping[str, Any],
                        **meta) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arrays, metadata) of a learner's checkpoint: its state ``arrays`` and statistics
    ``rows`` (columns ``names``); the run's ``fingerprint``, the format and ``meta``."""
    arrays = dict(arrays)
    arrays.update(_rows_to_arrays(rows, names))
    return arrays, dict(fingerprint, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION, **meta)


def _shape_of(v) -> tuple[int, ...]:
    return tuple(v.shape) if hasattr(v, "shape") else ()


def check_checkpoint_state(path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                           like: Mapping[str, Any], limit: int, limit_name: str) -> int:
    """The step of a learner checkpoint whose contents are checked against a fresh run's
    state ``like`` (name → array): every array present with its shape and finite, the step an
    integer ≥ 0 equal to the number of statistics rows and at most ``limit`` (the run's
    ``limit_name``: max_iter or steps). ValueError naming the file and what is wrong."""
    where = f"checkpoint: {str(path)!r}"
    step = meta.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"{where} has step {step!r}, not an integer >= 0: the file was edited or damaged; "
                         "delete it to start afresh")
    for key, ref in like.items():
        a = arrays.get(key)
        if a is None or _shape_of(a) != _shape_of(ref):
            got = "missing" if a is None else f"shape {_shape_of(a)}"
            raise ValueError(f"{where}: array {key!r} is {got}, expected shape {_shape_of(ref)}: the file was "
                             "edited or made by another run; delete it to start afresh")
    for key, a in arrays.items():
        if not key.startswith("stats.") and a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise ValueError(f"{where}: array {key!r} holds NaN or Inf: the file is damaged; delete it to start afresh")
    rows = {len(v) for k, v in arrays.items() if k.startswith("stats.") and np.ndim(v) == 1}
    if rows != {step}:
        raise ValueError(f"{where}: step {step} does not match its {sorted(rows) or 'missing'} statistics rows: the "
                         "file was edited or damaged; delete it to start afresh")
    if step > limit:
        raise ValueError(f"{limit_name}: {limit} is below the checkpoint's step {step} ({str(path)!r}); ask for at "
                         f"least {step} {limit_name} to continue that run, or give another checkpoint path")
    return step


#: ``callback(step_index, row)`` of the learners: after every step, its statistics row
StepCallback = Callable[[int, dict[str, float]], None]
#: ``on_checkpoint(steps_done)`` of the learners: after each checkpoint is written
CheckpointCallback = Callable[[int], None]


@dataclass(frozen=True)
class RunControl:
    """What the learners' loops (:meth:`DictLearn.solve`, :meth:`csc.OnlineDictLearn.fit`)
    do around their steps, from their keyword arguments (checked here): a progress bar, a
    callback, and a checkpoint written every ``checkpoint_every`` steps and after the last.

    Attributes
    ----------
    checkpoint : path or None
        Checkpoint file (``.npz``); needed with ``checkpoint_every`` or ``resume``.
    checkpoint_every : int
        Steps between checkpoints (0, the default: never, and not after the last).
    resume : bool
        Continue from ``checkpoint`` when it exists (the learner loads it; default False).
    progress : bool
        Show a tqdm progress bar (default False).
    callback : callable or None
        ``callback(step_index, row)`` after every step (0-based index; default None).
    on_checkpoint : callable or None
        ``on_checkpoint(steps_done)`` after each checkpoint is written (default None).
    overwrite : bool
        Replace a file at ``checkpoint`` that is not a checkpoint of this run (default
        False: refused, :meth:`check_target`).
    """

    checkpoint: str | Path | None = None
    checkpoint_every: int = 0
    resume: bool = False
    progress: bool = False
    callback: StepCallback | None = None
    on_checkpoint: CheckpointCallback | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name in ("resume", "progress", "overwrite"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        object.__setattr__(self, "checkpoint_every", check_int("checkpoint_every", self.checkpoint_every, 0))
        for name in ("callback", "on_checkpoint"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise TypeError(f"{name}: expected a function or None, got {getattr(self, name)!r}")
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint: expected a file path or None, got {self.checkpoint!r}")
        if (self.checkpoint_every or self.resume) and self.checkpoint is None:
            raise ValueError("checkpoint: a checkpoint path is needed for checkpoint_every/resume")

    def check_target(self, fingerprint: Mapping[str, Any]) -> None:
        """Before a run that will write checkpoints: refuse (``FileExistsError`` naming the
        path) when ``checkpoint`` holds anything but a checkpoint of this run (the same
        ``fingerprint``: settings, λ, images, start), unless ``overwrite``; a folder is
        refused always. The one check of both learners; with ``resume`` the file is loaded
        and checked by the learner instead (nothing is written over a foreign file either)."""
        if self.checkpoint is None or not self.checkpoint_every or self.resume:
            return
        path = Path(self.checkpoint)
        if path.is_dir():
            raise IsADirectoryError(f"checkpoint: {str(path)!r} is a folder; give a file path (e.g. "
                                    f"{str(path / 'checkpoint.npz')!r})")
        if self.overwrite or not path.exists():
            return
        try:
            _, meta = load_checkpoint(path)
            _check_resume(meta, fingerprint, path)
        except (ValueError, OSError, KeyError) as exc:
            raise FileExistsError(
                f"checkpoint: {str(path)!r} exists and is not a checkpoint of this run ({exc}); nothing was "
                "written: choose another path, pass resume=True (csc learn --resume) to continue a run of the same "
                "settings, or overwrite=True (--overwrite-checkpoint) to replace the file") from None

    def progress_bar(self, total: int, initial: int, unit: str, show: bool = True):
        """The tqdm bar of a run of ``total`` steps from ``initial`` (shown with ``progress``
        where ``show``: the main process of a data-parallel run)."""
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, disable=not (self.progress and show), desc="learn", unit=unit)

    def after_step(self, bar, done: int, total: int, row: dict[str, float],
                   payload: Callable[[], tuple[dict[str, Any], dict[str, Any]]], write: bool = True) -> None:
        """After step ``done`` (1-based) of ``total``: the bar moved, ``callback(done - 1,
        row)``; when a checkpoint is due and ``write`` (the main process), ``payload()``'s
        (arrays, metadata) saved and ``on_checkpoint(done)`` called."""
        bar.update(1)
        if self.progress:
            bar.set_postfix(obj=f"{row['objective']:.4g}")
        if self.callback is not None:
            self.callback(done - 1, row)
        every = self.checkpoint_every
        if write and self.checkpoint is not None and every and (done % every == 0 or done == total):
            save_checkpoint(self.checkpoint, *payload())
            if self.on_checkpoint is not None:
                self.on_checkpoint(done)


# ======================================================================== the learner
def _prepare_images(images, D: torch.Tensor, joint: bool = False) -> torch.Tensor:
    """Images (B, H, W) (one (H, W) image allowed), or (B, C, H, W) (one (C, H, W)) for a
    multi-channel dictionary (K, C, kh, kw) or joint sparsity (``joint``: any C), checked
    and contiguous in D's dtype and device (the caller puts D on the working device,
    :func:`csc.core.checks.working_device`)."""
    S = as_float_tensor("images", images, D.dtype, D.device).detach()
    if joint:
        check_ndim("images", S, (3, 4), "(C, H, W) or (B, C, H, W)")
        check_not_channels_last("images", S, "(C, H, W) or (B, C, H, W)")
        S = S.reshape(-1, *S.shape[-3:])
    elif D.ndim == 4:
        S = check_colour_images(S, D)
    else:
        check_ndim("images", S, (2, 3), "(H, W) or (B, H, W)")
        check_not_channels_last("images", S, "(H, W) or (B, H, W)")
    if S.ndim == 2:
        S = S.unsqueeze(0)
    if S.numel() == 0:
        raise ValueError(f"images: expected at least one image, got shape {tuple(S.shape)}")
    check_image_size("images", *S.shape[-2:], D.shape[-2:])
    check_images("images", S)
    return S.contiguous()


def _batch_fingerprint(lmbda, opts, coding, S: torch.Tensor, D0: torch.Tensor, W) -> dict[str, Any]:
    """What a resumed batch run must share with its checkpoint."""
    fingerprint = {
        "learner": "batch", "lmbda": lmbda, "options": _resume_options(opts),
        "coding": _coding_identity(coding),
        "images_sha256": tensor_sha256(S), "initial_dictionary_sha256": tensor_sha256(D0),
    }
    if W is not None:
        fingerprint["mask_sha256"] = tensor_sha256(W) if isinstance(W, torch.Tensor) else repr(W)
    return fingerprint


def _resume_batch(run: "_BatchRun", checkpoint, fingerprint: dict[str, Any]):
    """(statistics rows, first outer iteration, elapsed seconds) after loading ``checkpoint``
    into ``run`` when it exists ([], 0, 0 otherwise)."""
    if checkpoint is None or not Path(checkpoint).is_file():
        return [], 0, 0.0
    arrays, meta = load_checkpoint(checkpoint)
    _check_resume(meta, fingerprint, checkpoint)
    like = {k: v for k, v in run.arrays().items() if not k.startswith("d.") or k[2:] in run.ds._STATE}
    step = check_checkpoint_state(checkpoint, arrays, meta, like, run.opts.max_iter, "max_iter")
    try:  # the dictionary step's back-end state (its arrays differ between back ends)
        run.load(arrays)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ValueError(f"checkpoint: {str(checkpoint)!r}: its state does not fit this run ({type(exc).__name__}: "
                         f"{exc}); delete it to start afresh") from None
    return _rows_from_arrays(arrays, _STAT_NAMES), step, _elapsed(meta)


def _elapsed(meta: Mapping[str, Any]) -> float:
    """A checkpoint's elapsed seconds (0 when absent or not a finite number ≥ 0)."""
    e = meta.get("elapsed", 0.0)
    return float(e) if isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e) and e >= 0 else 0.0


class DictLearn:
    r"""Batch convolutional dictionary learner (SPORCO ``ConvBPDNDictLearn``; module docstring).

    Parameters
    ----------
    dictionary : (K, kh, kw) tensor or array
        Initial dictionary; it is projected onto the constraint set (unit norm, and
        zero mean / non-negative when asked) before learning, as SPORCO does.
    lmbda : float
        λ ≥ 0.
    options : DictLearnOptions, optional

    Notes
    -----
    Devices: with ``options.device`` set, learning runs there. Without it (the default) it
    runs on the images' device (for a tensor; images given as an array go to the initial
    dictionary's): a CPU or numpy initial dictionary given CUDA images learns on the GPU,
    and a mask given on another device is moved there with the images. The initial
    dictionary's copy on each device is made once and kept by the learner
    (:attr:`initial_dictionary` stays on its own device); the images are converted to its
    dtype (``options.dtype``: both to that).

    Examples
    --------
    >>> learner = DictLearn(D0, 0.1, DictLearnOptions(max_iter=200, dmethod="cns"))
    >>> result = learner.solve(images)            # images (B, H, W)
    >>> result.dictionary.shape                   # (K, kh, kw)
    >>> result.stats.objective                    # per outer iteration
    """

    def __init__(self, dictionary, lmbda: float, options: DictLearnOptions | None = None, *, coding=None):
        self.options = options if options is not None else DictLearnOptions()
        if not isinstance(self.options, DictLearnOptions):
            raise TypeError(f"options: expected DictLearnOptions, got {type(self.options).__name__}")
        self.lmbda = check_nonnegative("lmbda", lmbda)
        self.coding = _check_coding(coding, self.lmbda, self.options)
        if self.coding is not None:  # the coding problem's options are the coding step's
            self.options = _coding_options(self.options, self.coding)
        D = prepare_dictionary(dictionary, self.options.dtype, self.options.device, multichannel=True)
        c = self.options.ccmod
        self.constraint = dictionary_constraint(D, self.options.dict_size, zero_mean=c.zero_mean, nonneg=c.nonneg)
        self.initial_dictionary = self.constraint.project(D)
        self._copies = DeviceCopies()  # the initial dictionary on the devices learned on

    def _initial_on(self, device: torch.device) -> torch.Tensor:
        """:attr:`initial_dictionary` on ``device``: itself, or its copy there, made once."""
        return on_device(self._copies, "initial_dictionary", self.initial_dictionary, device)

    def _masked_coding(self, mask, S: torch.Tensor):
        """(coding problem, W) of a solve: W checked as :meth:`csc.ConvBPDNMaskDcpl.solve`
        checks it ((1 or B, 1, H, W) or a float; None without a masked problem); a mask with
        no coding problem gets a :class:`csc.ConvBPDNMaskDcpl` with ``options.cbpdn`` where that is a
        :class:`csc.MaskDcplOptions` (``DictLearnOptions.from_sporco(..., masked=True)``), else with
        the masked learner's defaults (:data:`DICTLEARN_MASKDCPL_DEFAULTS`)."""
        from csc.problems.maskdcpl import ConvBPDNMaskDcpl

        from csc.core.options import MaskDcplOptions

        masked = isinstance(self.coding, ConvBPDNMaskDcpl) or isinstance(self.options.cbpdn, MaskDcplOptions)
        if mask is None and not masked:
            return self.coding, None
        if self.options.xmethod == "pgm":
            raise ValueError("mask: masked learning codes by mask decoupling (ADMM); xmethod='pgm' is not offered "
                             "with a mask")
        if not masked and self.coding is not None:
            raise ValueError(f"mask: a masked learner codes by mask decoupling; its coding problem must be a "
                             f"csc.ConvBPDNMaskDcpl, not {type(self.coding).__name__}")
        if self.initial_dictionary.ndim != 3:
            raise ValueError("mask: masked learning takes a single-channel (K, kh, kw) dictionary")
        coding = self.coding
        if coding is None and isinstance(self.options.cbpdn, MaskDcplOptions):  # from_sporco(..., masked=True)
            coding = ConvBPDNMaskDcpl(self.initial_dictionary, self.lmbda, self.options.cbpdn)
        if coding is None:
            if self.options.cbpdn != DICTLEARN_CBPDN_DEFAULTS:
                raise ValueError("options.cbpdn: with a mask the coding step is mask decoupling; give its options "
                                 "as coding=csc.ConvBPDNMaskDcpl(D0, lmbda, csc.MaskDcplOptions(...)) and leave "
                                 "options.cbpdn at its default")
            coding = ConvBPDNMaskDcpl(self.initial_dictionary, self.lmbda, DICTLEARN_MASKDCPL_DEFAULTS)
        m = mask
        if isinstance(m, (torch.Tensor, np.ndarray)) and m.ndim == 4:
            if m.shape[1] != 1:
                raise ValueError(f"mask: expected one map per image (B, 1, H, W), got shape {tuple(m.shape)}")
            m = m[:, 0]
        W = ConvBPDNMaskDcpl._prepare_mask(m, S.shape[0], S.shape[:1], tuple(S.shape[-2:]), S)
        return coding, W

    def _joint(self) -> bool:
        from csc.problems.joint import ConvBPDNJoint

        return isinstance(self.coding, ConvBPDNJoint)

    def solve(self, images, mask=None, *, checkpoint: str | Path | None = None, checkpoint_every: int = 0,
              resume: bool = False, progress: bool = False, callback: StepCallback | None = None,
              on_checkpoint: CheckpointCallback | None = None, overwrite: bool = False) -> DictLearnResult:
        """Learn from ``images`` (B, H, W) (or one (H, W) image) for ``options.max_iter``
        outer iterations.

        Parameters
        ----------
        mask : optional
            The data term's weights W ≥ 0 (0 for missing pixels): a scalar, (H, W) for every
            image, or (B, H, W) / (B, 1, H, W), one map per image; the learner is then SPORCO's
            ``ConvBPDNMaskDictLearn`` (``xmethod='admm'``): ½Σ_j‖W_j ⊙ (Σ_k d_k * x_jk − s_j)‖²
            + λ‖x‖₁, coded by mask decoupling (:class:`csc.ConvBPDNMaskDcpl`; with no
            ``coding`` problem, its options are :data:`DICTLEARN_MASKDCPL_DEFAULTS`) and the
            masked dictionary steps. A ``coding=csc.ConvBPDNMaskDcpl(...)`` learner without a
            mask takes W = 1.
        checkpoint : path, optional
            Checkpoint file (``.npz``). Written every ``checkpoint_every`` outer
            iterations (0: never) and after the last one.
        resume : bool
            Continue from ``checkpoint`` when it exists (its settings, λ and images must
            match this run's); the result equals the uninterrupted run's.
        progress : bool
            Show a tqdm progress bar.
        callback : callable, optional
            Called as ``callback(iteration, row)`` after every outer iteration.
        on_checkpoint : callable, optional
            Called as ``on_checkpoint(step)`` after each checkpoint is written (the tests
            kill the process there to check that a resumed run loses nothing).
        overwrite : bool
            Replace a file at ``checkpoint`` that is not a checkpoint of this run; by
            default (False) such a file is refused (``FileExistsError`` naming it) before
            anything is written. A checkpoint of this run is rewritten (or, with
            ``resume``, continued).
        """
        lmbda = self.lmbda
        opts, D0, S, coding, W = self._prepare(images, mask)
        control = RunControl(checkpoint, checkpoint_every, resume, progress, callback, on_checkpoint, overwrite)
        run = _BatchRun(S, D0, lmbda, opts, self.constraint, coding, mask=W)
        fingerprint = _batch_fingerprint(lmbda, opts, coding, S, D0, W)
        control.check_target(fingerprint)
        rows, start, t_offset = _resume_batch(run, checkpoint, fingerprint) if resume else ([], 0, 0.0)
        bar = control.progress_bar(opts.max_iter, start, "it")
        t0 = time.perf_counter()
        try:
            for j in range(start, opts.max_iter):
                row = run.step(j)
                row["time"] = t_offset + time.perf_counter() - t0
                rows.append(row)
                control.after_step(bar, j + 1, opts.max_iter, row, lambda: _checkpoint_payload(
                    run.arrays(), rows, _STAT_NAMES, fingerprint, step=j + 1, elapsed=row["time"],
                    max_iter=opts.max_iter, dtype=str(D0.dtype)))
        finally:
            bar.close()
        check_learned(run.ds.D, S)
        codes = run.cb.y.reshape(S.shape[:2] + run.cb.y.shape[1:]) if self._joint() else run.cb.y
        return DictLearnResult(dictionary=run.ds.D, stats=DictLearnStats.from_rows(rows), codes=codes,
                               iterations=len(rows))

    def _prepare(self, images, mask):
        """(options, D0, S, coding problem, W) of a solve: the initial dictionary on the
        working device, the images checked (:func:`_prepare_images`), the coding problem and
        mask (:meth:`_masked_coding`), and the options with that problem's coding options."""
        opts = self.options
        D0 = self._initial_on(working_device(images, opts.device, self.initial_dictionary.device))
        S = _prepare_images(images, D0, joint=self._joint())
        coding, W = self._masked_coding(mask, S)
        if coding is not self.coding:
            opts = opts.replace(cbpdn=_as_cbpdn(coding.options))
        return opts, D0, S, coding, W


class _BatchRun:
    """One batch-learning run: the joint coding step and the dictionary step on one back end,
    alternated once per outer iteration (SPORCO ``ConvBPDNDictLearn``), with their state
    as checkpoint arrays (``x.*``: coding, ``d.*``: dictionary step)."""

    def __init__(self, S: torch.Tensor, D0: torch.Tensor, lmbda: float, opts: DictLearnOptions,
                 constraint: KernelConstraint, coding=None, mask=None):
        (H, W), K = S.shape[-2:], D0.shape[0]
        self.opts, self.fused = opts, _use_fused(opts.cbpdn, D0.device) and opts.xmethod == "admm"
        if opts.xmethod == "pgm":  # FISTA coding (SPORCO xmethod='pgm'): the torch back end
            self.cb = JointFISTA(S, lmbda, opts.fista, K, D0.shape[-2:])
            masked = None
        elif mask is None:
            self.cb = JointCBPDN(S, lmbda, opts.cbpdn, K, D0.shape[-2:], fused=self.fused, problem=coding)
            self.cb.track_nonzeros = self.fused and opts.dmethod == "pgm" and D0.ndim == 3
            masked = None
        else:  # mask decoupling (SPORCO ConvBPDNMaskDictLearn)
            self.cb = JointMaskDcpl(S, lmbda, opts.cbpdn, K, D0.shape[-2:], mask, fused=self.fused)
            masked = (self.cb.S, mask[:, 0] * mask[:, 0] if isinstance(mask, torch.Tensor) else mask * mask)
        self.ds = _dictionary_step(D0, self.cb.Sf, (H, W), opts, constraint, self.fused, masked)
        self.sync()

    def sync(self) -> None:
        """Give the coding step the dictionary step's current dictionary."""
        if self.fused:
            self.cb.set_dictionary(Df=self.ds.dft())
        else:
            self.cb.set_dictionary(self.ds.D)

    def step(self, j: int) -> dict[str, float]:
        """Outer iteration j: coding iterations, dictionary iterations; its statistics."""
        cb, ds, opts = self.cb, self.ds, self.opts
        row: dict[str, float] = {"iteration": j}
        row.update(cb.iterate(opts.cbpdn.max_iter if opts.xmethod == "admm" else opts.fista.max_iter, host=False))
        ds.set_codes(cb)
        row.update(ds.iterate(opts.ccmod.max_iter))
        self.sync()
        if opts.accurate_dfid:
            row.update(cb.objective(ds.D, ds.dft() if self.fused else torch.fft.rfft2(ds.padded())))
        return read_row(row)  # the outer iteration's one host read (statistics of both steps)

    def arrays(self) -> dict[str, Any]:
        arrays: dict[str, Any] = {"dictionary": self.ds.D}
        for k, v in self.cb.state().items():
            arrays[f"x.{k}"] = v if isinstance(v, torch.Tensor) else np.asarray(v, np.int64 if k == "k" else np.float64)
        for k, v in self.ds.state().items():
            arrays[f"d.{k}"] = v if isinstance(v, torch.Tensor) else np.asarray(v)
        return arrays

    def load(self, arrays: Mapping[str, np.ndarray]) -> None:
        dev = self.ds.D.device
        t = lambda a: torch.from_numpy(a).to(dev)  # noqa: E731
        self.cb.load_state({k[2:]: (t(v) if v.ndim else v) for k, v in arrays.items() if k.startswith("x.")})
        self.ds.load_state({k[2:]: (t(v) if v.ndim else v) for k, v in arrays.items() if k.startswith("d.")})
        self.sync()


_STAT_NAMES = [f.name for f in fields(DictLearnStats)]


def _check_coding(coding, lmbda: float, opts: DictLearnOptions):
    """The batch learner's coding problem (None: CBPDN with ``options.cbpdn``): a csc.ConvBPDN,
    csc.ConvElasticNet or csc.ConvBPDNGradReg instance, single-channel, with the learner's λ;
    its options are then the coding step's, so ``options.cbpdn`` must be left at its default."""
    if coding is None:
        return None
    from csc.problems.cbpdn import ConvBPDN
    from csc.problems.fista import ConvBPDNFISTA
    from csc.problems.joint import ConvBPDNJoint
    from csc.problems.maskdcpl import ConvBPDNMaskDcpl
    from csc.problems.variants import ConvBPDNGradReg, ConvElasticNet

    if type(coding) not in (ConvBPDN, ConvElasticNet, ConvBPDNGradReg, ConvBPDNJoint, ConvBPDNMaskDcpl, ConvBPDNFISTA):
        raise TypeError(f"coding: expected a csc.ConvBPDN, ConvElasticNet, ConvBPDNGradReg, ConvBPDNJoint, "
                        f"ConvBPDNMaskDcpl or ConvBPDNFISTA instance (the coding problem; its dictionary is replaced "
                        f"at each step), got {type(coding).__name__}")
    if opts.xmethod == "pgm" and type(coding) is not ConvBPDNFISTA:
        raise ValueError("coding: with xmethod='pgm' the coding problem is a csc.ConvBPDNFISTA (or none)")
    if type(coding) is ConvBPDNFISTA and opts.fista != DICTLEARN_FISTA_DEFAULTS:
        raise ValueError("options.fista: with a coding problem the coding options are the problem's own "
                         "(coding.options); leave options.fista at its default")
    if type(coding) not in (ConvBPDN, ConvBPDNFISTA) and coding.dictionary.ndim != 3:
        raise ValueError("coding: the penalised problems take single-channel (K, kh, kw) dictionaries")
    if coding.lmbda != lmbda:
        raise ValueError(f"coding: its λ ({coding.lmbda}) differs from the learner's ({lmbda}); give both the same")
    if opts.cbpdn != DICTLEARN_CBPDN_DEFAULTS:
        raise ValueError("options.cbpdn: with a coding problem the coding options are the problem's own "
                         "(coding.options); leave options.cbpdn at its default")
    if coding.options.max_iter < 1:
        raise ValueError("coding: its options' max_iter must be >= 1 (coding iterations per outer iteration)")
    return coding


def _coding_options(opts: DictLearnOptions, coding) -> DictLearnOptions:
    """The learner's options with the coding problem's options as the coding step's: a
    csc.ConvBPDNFISTA's as ``fista`` (``xmethod='pgm'``), another's CBPDN fields as ``cbpdn``."""
    from csc.core.options import FISTAOptions

    if isinstance(coding.options, FISTAOptions):
        return opts.replace(xmethod="pgm", fista=coding.options)
    return opts.replace(cbpdn=_as_cbpdn(coding.options))


def _as_cbpdn(o) -> CBPDNOptions:
    """The CBPDN fields of a coding problem's options (GradRegOptions, CBPDNJointOptions have more)."""
    return CBPDNOptions(**{f.name: getattr(o, f.name) for f in fields(CBPDNOptions)})


def _coding_identity(coding) -> dict[str, Any] | None:
    if coding is None:
        return None
    return {"problem": type(coding).__name__, "mu": getattr(coding, "mu", None), "options": _jsonable(coding.options)}


def _resume_options(opts) -> dict[str, Any]:
    """Options that must match between a checkpoint and a resumed run (not max_iter or device)."""
    d = _jsonable(opts)
    d.pop("max_iter", None)
    d.pop("device", None)
    if isinstance(d.get("cbpdn"), dict):
        for k in ("record_stats", "sync_interval", "device", "dtype"):
            d["cbpdn"].pop(k, None)
    return _without_new_defaults(d)


#: options added after checkpoints were first written, and their defaults: left out of the
#: fingerprint at these values, so that the checkpoints of before resume
_NEW_DEFAULTS = {"xmethod": "admm", "dict_size": None}
_NEW_CCMOD_DEFAULTS = {"momentum": "nesterov", "momentum_a": 50.0, "momentum_b": 2.0, "backtrack": None,
                       "gamma_u": 1.2, "backtrack_max_iter": 50, "zero_dual": False}


def _without_new_defaults(d: dict[str, Any]) -> dict[str, Any]:
    """The options' JSON ``d`` without the fields of :data:`_NEW_DEFAULTS` (and ``fista`` with
    ``xmethod='admm'``) and the ``ccmod`` fields of :data:`_NEW_CCMOD_DEFAULTS` at their defaults."""
    if d.get("xmethod", "admm") == "admm":
        d.pop("fista", None)
    for group, new in ((d, _NEW_DEFAULTS), (d.get("ccmod"), _NEW_CCMOD_DEFAULTS)):
        if isinstance(group, dict):
            for k, v in new.items():
                if k in group and group[k] == v:
                    group.pop(k)
    return d


# ========================================================================== helpers
def random_crops(images, size, generator: torch.Generator | None = None, per_image: int = 1) -> torch.Tensor:
    """Random size×size crops, ``per_image`` from each image, drawn with ``generator``.

    ``images`` is a (N, H, W) tensor or a list of (H_i, W_i) tensors/arrays of any sizes
    (each at least ``size``), or of colour images (C, H_i, W_i). Positions are drawn on the
    CPU generator in image order, so the crops are reproducible from the generator's
    state. Returns (N·per_image, h, w) (or (N·per_image, C, h, w)) on the images' device.
    """
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if h < 1 or w < 1:
        raise ValueError(f"size: expected positive crop sizes, got {size!r}")
    if per_image < 1:
        raise ValueError(f"per_image: expected >= 1, got {per_image}")
    out = []
    for i, img in enumerate(images):
        t = as_float_tensor(f"images[{i}]", img)
        if t.ndim not in (2, 3):
            raise ValueError(f"images[{i}]: expected a gray (H, W) or colour (C, H, W) image, got shape "
                             f"{tuple(t.shape)}")
        H, W = t.shape[-2:]
        if H < h or W < w:
            raise ValueError(f"size: crop {h}×{w} is larger than images[{i}] ({H}×{W})")
        for _ in range(per_image):
            r0 = int(torch.randint(H - h + 1, (1,), generator=generator))
            c0 = int(torch.randint(W - w + 1, (1,), generator=generator))
            out.append(t[..., r0:r0 + h, c0:c0 + w])
    return torch.stack(out)


def plot_objective(stats, path: str | Path, title: str | None = None) -> Path:
    """Plot the objective per iteration (log scale) to a PNG file; returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.asarray(stats.iteration), np.asarray(stats.objective), lw=1.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
