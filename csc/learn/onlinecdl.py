r"""Online (minibatch) convolutional dictionary learning, SPORCO ``OnlineConvBPDNDictLearn``.

For each new minibatch of images s_j (B×H×W; B = 1 in SPORCO's examples), step i
(from 0):

1. **Coding** — solve CBPDN for the minibatch with the current dictionary D, from
   zero, with ``cbpdn`` options (default: 100 ADMM iterations, AutoRho every 10
   iterations with multiplier 2, ratio 10, target 1, ρ₀ = 50λ + 1). The images of one
   minibatch are solved *jointly* (one ρ, global residuals and stopping), as SPORCO
   does for a multi-image array; with B = 1 this is exactly :class:`csc.ConvBPDN`.
2. **Gradient step** on the data term in the DFT domain, with Ẑ the DFT of the sparse
   codes y:

   .. math::
       \hat G = \hat D - \eta_i \sum_j \overline{\hat Z_j}\,(\hat Z_j \hat D - \hat S_j),
       \qquad \eta_i = \frac{a}{i + b}

   (``eta_a`` = a, ``eta_b`` = b; SPORCO's defaults 10 and 5).
3. **Projection** D ← P_C(IDFT(Ĝ)): crop to kh×kw, optionally zero mean or
   non-negative, unit ℓ2 norm (:mod:`csc.learn.constraints`).

With a mask (``step(images, mask=W)``; SPORCO ``OnlineConvBPDNMaskDictLearn.solve(S, W)``) the
coding is mask decoupling (:class:`csc.learn.coding.JointMaskDcpl`, options ``cbpdn_mask``)
and the gradient :math:`\sum_j \overline{\hat Z_j}\,\mathrm{DFT}(W_j \odot \mathrm{IDFT}(\hat Z_j \hat D - \hat S_j))`
(W, not W², as SPORCO's); :class:`ImageSampler` ``masks=`` crops a mask per image with it.

Statistics per step (SPORCO's): the coding step's last ObjFun, DFid, RegL1, residuals
and ρ; Cnstr = ‖pad(D) − G‖, DeltaD = ‖D − D_prev‖, η.

:meth:`OnlineDictLearn.fit` draws minibatches from an :class:`ImageSampler` (random
crops from a pool of images, explicit ``torch.Generator``) and writes pickle-free
checkpoints (dictionary, step, generator state, statistics) from which a run resumes
bit for bit.

Data parallel (``torchrun``, :mod:`csc.runtime.distributed`): with a process group of N ranks,
every rank draws the same *global* minibatch from an identically seeded sampler and codes
its contiguous slice of it; the squared norms behind the coding step's residuals,
objective and stopping test are summed over ranks at every ADMM iteration, and so is the
gradient Σ_j Z̄_j(Z_j D − S_j). Every rank then applies the same update, so the dictionary
is the single-process one up to the order of floating-point sums (≤ 1e-10 relative in
float64). Rank 0 alone writes checkpoints; on resume it reads the checkpoint and sends it
to the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csc.runtime import distributed as _dist
from csc.core import ops
from csc.core.checks import (as_float_tensor, check_finite, check_images, check_int, check_learned, check_nonnegative,
                             prepare_dictionary, working_device)
from csc.learn.constraints import dictionary_constraint
from csc.learn.dictlearn import (
    CheckpointCallback,
    RunControl,
    StepCallback,
    _check_resume,
    _elapsed,
    check_checkpoint_state,
    _checkpoint_payload,
    _jsonable,
    _prepare_images,
    _rows_from_arrays,
    _use_fused,
    load_checkpoint,
    tensor_sha256,
)
from csc.learn.options import ONLINE_CBPDN_DEFAULTS, OnlineDictLearnOptions  # noqa: F401
from csc.problems.cbpdn import SPORCO_STATS_NAMES
from csc.core.stats import CodingStats
from csc.backends.torch_dictstep import pad as _pad
from csc.learn.coding import JointCBPDN, read_row
from csc.learn.dictstep import l2 as _l2

__all__ = [
    "OnlineDictLearn",
    "OnlineDictLearnOptions",
    "OnlineDictLearnResult",
    "OnlineStats",
    "ImageSampler",
    "ONLINE_CBPDN_DEFAULTS",
    "SPORCO_ONLINE_STATS_NAMES",
]

#: csc :class:`OnlineStats` field → SPORCO ``OnlineConvBPDNDictLearn`` ``IterationStats`` field.
#: The coding statistics keep :data:`csc.problems.cbpdn.SPORCO_STATS_NAMES`' names.
SPORCO_ONLINE_STATS_NAMES: dict[str, str] = {
    **{k: SPORCO_STATS_NAMES[k] for k in ("iteration", "objective", "data_fidelity", "l1", "primal_residual",
                                          "dual_residual", "rho")},
    "constraint": "Cnstr",
    "delta_d": "DeltaD",
    "eta": "Eta",
    "time": SPORCO_STATS_NAMES["time"],
}


@dataclass(frozen=True)
class OnlineStats(CodingStats):
    """Per-step statistics of :class:`OnlineDictLearn` (arrays over steps; SPORCO's fields,
    :data:`SPORCO_ONLINE_STATS_NAMES`). ``cbpdn_iterations`` (csc only) is the number of
    coding iterations run in each step."""

    rho: np.ndarray
    constraint: np.ndarray
    delta_d: np.ndarray
    eta: np.ndarray
    cbpdn_iterations: np.ndarray
    time: np.ndarray


_STAT_NAMES = [f.name for f in fields(OnlineStats)]


@dataclass
class OnlineDictLearnResult:
    """Result of :meth:`OnlineDictLearn.fit`: the dictionary (K, kh, kw), the statistics
    of every step (including a resumed run's earlier steps) and the number of steps."""

    dictionary: torch.Tensor
    stats: OnlineStats
    steps: int


def _mask_pool(masks, pool: list[torch.Tensor]) -> list[torch.Tensor]:
    """The sampler's masks: one (H_i, W_i) map of finite weights ≥ 0 per pool image."""
    seq = [masks[i] for i in range(len(masks))] if isinstance(masks, (torch.Tensor, np.ndarray)) else list(masks)
    if len(seq) != len(pool):
        raise ValueError(f"masks: expected one mask per image ({len(pool)}), got {len(seq)}")
    out = []
    for i, (m, t) in enumerate(zip(seq, pool)):
        m = as_float_tensor(f"masks[{i}]", m, t.dtype, integers=True).detach()
        if tuple(m.shape) != tuple(t.shape[-2:]):
            raise ValueError(f"masks[{i}]: expected the image's shape {tuple(t.shape[-2:])}, got {tuple(m.shape)}")
        check_finite(f"masks[{i}]", m)
        if bool((m < 0).any()):
            raise ValueError(f"masks[{i}]: expected weights >= 0, found negative entries")
        out.append(m)
    return out


def _as_image_masks(mask):
    """A (B, 1, H, W) mask as (B, H, W) (one map per image); anything else as given."""
    if isinstance(mask, (torch.Tensor, np.ndarray)) and mask.ndim == 4:
        if mask.shape[1] != 1:
            raise ValueError(f"mask: expected one map per image (B, 1, H, W), got shape {tuple(mask.shape)}")
        return mask[:, 0]
    return mask


def _crop_size(crop) -> tuple[int, int]:
    """A crop size given as an int or an (h, w) pair of ints ≥ 1, as (h, w); TypeError or
    ValueError naming ``crop`` otherwise (a string, a float, a pair of another length)."""
    if isinstance(crop, (int, np.integer)) and not isinstance(crop, (bool, np.bool_)):
        crop = (crop, crop)
    if not isinstance(crop, (tuple, list)) or len(crop) != 2:
        raise TypeError(f"crop: expected an integer or an (h, w) pair of integers, got {crop!r}")
    return tuple(check_int("crop", c, 1) for c in crop)


class ImageSampler:
    """Minibatches of random crops from a pool of images, reproducible from a generator.

    Parameters
    ----------
    images : (N, H, W) tensor/array or sequence of (H_i, W_i) images
    batch_size : int
        Images per minibatch; each is drawn uniformly from the pool, with replacement.
    crop : int or (h, w), optional
        Crop size; each drawn image gets a uniformly random crop. Without it every image
        of a minibatch is used whole (they must then share one size when batch_size > 1).
    generator : torch.Generator, optional
        CPU generator for the draws (default: a new one seeded 0).
    masks : optional
        One mask (weights ≥ 0, 0 for missing pixels) per image of the pool, of its spatial
        size ((N, H, W) or a sequence of (H_i, W_i)): :meth:`sample_with_masks` then gives the
        masks cropped where the images are, and :meth:`OnlineDictLearn.fit` learns with them.
    """

    def __init__(self, images, batch_size: int = 1, crop=None, generator: torch.Generator | None = None,
                 masks=None):
        if isinstance(images, (torch.Tensor, np.ndarray)) and np.ndim(images) in (3, 4):
            pool = [as_float_tensor(f"images[{i}]", images[i]).detach() for i in range(len(images))]
        elif isinstance(images, (torch.Tensor, np.ndarray)) and np.ndim(images) == 2:
            pool = [as_float_tensor("images", images).detach()]
        else:
            pool = [as_float_tensor(f"images[{i}]", im).detach() for i, im in enumerate(images)]
        if not pool:
            raise ValueError("images: expected at least one image")
        for i, t in enumerate(pool):
            if t.ndim not in (2, 3) or t.shape[:-2] != pool[0].shape[:-2]:
                raise ValueError(f"images[{i}]: expected grey (H, W) or colour (C, H, W) images, all alike, got "
                                 f"shape {tuple(t.shape)}")
            check_images(f"images[{i}]", t)
        batch_size = check_int("batch_size", batch_size, 1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {generator!r}")
        if crop is not None:
            crop = _crop_size(crop)
            small = [i for i, t in enumerate(pool) if t.shape[-2] < crop[0] or t.shape[-1] < crop[1]]
            if small:
                raise ValueError(f"crop: {crop[0]}×{crop[1]} is larger than images {small}")
        elif batch_size > 1 and len({tuple(t.shape) for t in pool}) > 1:
            raise ValueError("crop: the images differ in size; give a crop size to batch them")
        self.images, self.batch_size, self.crop = pool, int(batch_size), crop
        self.masks = None if masks is None else _mask_pool(masks, pool)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def _draw(self) -> list[tuple[int, slice, slice]]:
        """The next minibatch's (pool index, rows, columns), from the generator."""
        g = self.generator
        idx = torch.randint(len(self.images), (self.batch_size,), generator=g).tolist()
        out = []
        for i in idx:
            t = self.images[i]
            if self.crop is None:
                out.append((i, slice(None), slice(None)))
                continue
            h, w = self.crop
            r0 = int(torch.randint(t.shape[-2] - h + 1, (1,), generator=g))
            c0 = int(torch.randint(t.shape[-1] - w + 1, (1,), generator=g))
            out.append((i, slice(r0, r0 + h), slice(c0, c0 + w)))
        return out

    def sample(self) -> torch.Tensor:
        """The next minibatch (batch_size, h, w), or (batch_size, C, h, w) of colour images."""
        return torch.stack([self.images[i][..., r, c] for i, r, c in self._draw()])

    def sample_with_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next minibatch and its masks (batch_size, h, w), cropped alike (the same draws
        as :meth:`sample`)."""
        if self.masks is None:
            raise ValueError("masks: this sampler was made without masks")
        draw = self._draw()
        return (torch.stack([self.images[i][..., r, c] for i, r, c in draw]),
                torch.stack([self.masks[i][r, c] for i, r, c in draw]))

    def get_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state) -> None:
        self.generator.set_state(torch.as_tensor(np.asarray(state), dtype=torch.uint8))

    def fingerprint(self) -> dict[str, Any]:
        h = __import__("hashlib").sha256()
        for t in self.images:
            h.update(tensor_sha256(t).encode())
        for m in self.masks or ():
            h.update(b"mask" + tensor_sha256(m).encode())
        return {"images_sha256": h.hexdigest(), "batch_size": self.batch_size,
                "crop": list(self.crop) if self.crop else None}


class OnlineDictLearn:
    """Online convolutional dictionary learner (module docstring for the equations).

    Parameters
    ----------
    dictionary : (K, kh, kw)
        Initial dictionary (projected onto the constraint set first, as SPORCO does).
    lmbda : float
        λ ≥ 0.
    options : OnlineDictLearnOptions, optional
    distributed : bool, optional
        Data-parallel over the default process group (module docstring): :meth:`step`
        takes the *global* minibatch (the same on every rank) and codes this rank's
        slice. Default: whenever a group with several processes is initialised
        (:func:`csc.runtime.distributed.init_distributed`). The initial dictionary is taken
        from rank 0.

    Notes
    -----
    Devices: with ``options.device`` set, learning runs there. Without it (the default)
    each step runs on its images' device (for a tensor; an array goes to the dictionary's):
    a CPU or numpy initial dictionary given CUDA minibatches (or an :class:`ImageSampler` of
    CUDA images) learns on the GPU. The learner's :attr:`dictionary`, its state, moves there
    at the first such step and stays (later steps there copy nothing), and a mask given on
    another device is moved with the minibatch; :attr:`initial_dictionary` stays where it was
    given. Data parallel, the working device is the process group's (the minibatch is moved
    to the dictionary's device). Minibatches are converted to the dictionary's dtype.

    Examples
    --------
    >>> learner = OnlineDictLearn(D0, 0.1, OnlineDictLearnOptions(eta_a=100, eta_b=1000))
    >>> for _ in range(100):
    ...     learner.step(sampler.sample())        # or learner.fit(sampler, 100)
    >>> learner.dictionary
    """

    def __init__(self, dictionary, lmbda: float, options: OnlineDictLearnOptions | None = None, *,
                 distributed: bool | None = None):
        self.options = options if options is not None else OnlineDictLearnOptions()
        if not isinstance(self.options, OnlineDictLearnOptions):
            raise TypeError(f"options: expected OnlineDictLearnOptions, got {type(self.options).__name__}")
        self.lmbda = check_nonnegative("lmbda", lmbda)
        self.distributed = _dist.resolve_distributed(distributed)[0]  # its flag checked there
        self.rank, self.world_size = (_dist.get_rank(), _dist.get_world_size()) if self.distributed else (0, 1)
        device = self.options.device
        if self.distributed and device is None:  # NCCL broadcasts and reduces CUDA tensors only
            device = _dist.collective_device()
        D = prepare_dictionary(dictionary, self.options.dtype, device, multichannel=True)
        if self.distributed:  # every rank starts from rank 0's dictionary
            D = D.contiguous().clone()
            torch.distributed.broadcast(D, src=0)
        o = self.options
        self.constraint = dictionary_constraint(D, o.dict_size, zero_mean=o.zero_mean, nonneg=o.nonneg)
        self.initial_dictionary = self.constraint.project(D)
        self.dictionary = self.initial_dictionary
        self.j = 0
        self._rows: list[dict[str, float]] = []
        self._t_offset = 0.0

    @property
    def stats(self) -> OnlineStats:
        return OnlineStats.from_rows(self._rows)

    def step(self, images, mask=None) -> dict[str, float]:
        r"""One learning step on a minibatch (B, H, W) or one image (H, W); returns the
        step's statistics row. Data parallel: the global minibatch, B ≥ the number of
        processes; this rank codes ``images[csc.runtime.distributed.rank_slice(B)]``.

        ``mask``: the data term's weights W ≥ 0 (a scalar, (H, W), or (B, H, W) /
        (B, 1, H, W), checked as :meth:`csc.ConvBPDNMaskDcpl.solve` checks them): the step
        is then SPORCO's ``OnlineConvBPDNMaskDictLearn.solve(S, W)``: the minibatch coded by
        mask decoupling (:class:`csc.learn.coding.JointMaskDcpl`, options ``cbpdn_mask``)
        and the gradient :math:`\sum_j \overline{\hat Z_j}\,\mathrm{DFT}(W_j \odot
        \mathrm{IDFT}(\hat Z_j \hat D - \hat S_j))` (W, not W², as SPORCO's; the same for 0/1 masks).
        """
        t0 = time.perf_counter()
        o, D = self.options, self.dictionary
        if not self.distributed:  # the dictionary follows the images (once: it stays there)
            device = working_device(images, o.device, D.device)
            if D.device != device:
                self.dictionary = D = D.to(device)
        S = _prepare_images(images, D)
        B, (H, W) = S.shape[0], S.shape[-2:]
        K = D.shape[0]
        if mask is not None:
            return self._masked_step(S, mask, t0)
        if self.distributed:
            if B < self.world_size:
                raise ValueError(f"images: a minibatch of {B} image(s) cannot be split over {self.world_size} "
                                 "processes (use a batch size >= the number of processes)")
            cb = JointCBPDN(S[_dist.rank_slice(B, self.rank, self.world_size)], self.lmbda, o.cbpdn, K,
                            D.shape[-2:], all_reduce=_dist.all_reduce_sum, total_images=B)
        else:  # the coding step of DictLearn, on the fused CPU back end where it runs
            cb = JointCBPDN(S, self.lmbda, o.cbpdn, K, D.shape[-2:], fused=_use_fused(o.cbpdn, D.device))
        Df = ops.kernel_dft(D, (H, W))
        cb.set_dictionary(Df=Df)
        k0 = cb.k
        xrow = cb.iterate(o.cbpdn.max_iter, host=False)
        Zf = torch.fft.rfft2(cb.y)
        grad = ops.dictionary_gradient(Zf, ops.synthesis_any(Df, Zf) - cb.Sf)
        if self.distributed:
            grad = _dist.all_reduce_sum(grad)
        return self._update(Df, grad, xrow, cb.k - k0, t0, (H, W))

    def _masked_step(self, S: torch.Tensor, mask, t0: float) -> dict[str, float]:
        """:meth:`step` with a mask (its docstring): mask-decoupled coding, masked gradient."""
        from csc.problems.maskdcpl import ConvBPDNMaskDcpl
        from csc.learn.coding import JointMaskDcpl

        o, D = self.options, self.dictionary
        if self.distributed:
            raise ValueError("mask: data-parallel learning with a mask is not implemented; run it in one process")
        if D.ndim != 3:
            raise ValueError("mask: masked learning takes a single-channel (K, kh, kw) dictionary")
        Wm = _as_image_masks(mask)
        Wm = ConvBPDNMaskDcpl._prepare_mask(Wm, S.shape[0], S.shape[:1], tuple(S.shape[-2:]), S)
        H, W = S.shape[-2:]
        cb = JointMaskDcpl(S, self.lmbda, o.cbpdn_mask, D.shape[0], D.shape[-2:], Wm,
                           fused=_use_fused(o.cbpdn_mask, D.device))
        Df = ops.kernel_dft(D, (H, W))
        cb.set_dictionary(Df=Df)
        xrow = cb.iterate(o.cbpdn_mask.max_iter)
        Zf = cb.codes_dft()
        Wr = Wm[:, 0] if isinstance(Wm, torch.Tensor) else Wm
        grad = ops.dictionary_gradient(Zf, torch.fft.rfft2(Wr * cb.residual(Df, Zf)))
        return self._update(Df, grad, xrow, cb.k, t0, (H, W))

    def _update(self, Df: torch.Tensor, grad: torch.Tensor, xrow: dict[str, float], iters: int, t0: float,
                shape) -> dict[str, float]:
        """The gradient step D ← P_C(IDFT(D̂ − η∇)), η = eta_a/(j + eta_b), and the step's row."""
        o, D = self.options, self.dictionary
        H, W = shape
        eta = o.eta_a / (self.j + o.eta_b)
        G = torch.fft.irfft2(Df - eta * grad, s=(H, W))
        Dnew = self.constraint.project(G)
        row = {
            "iteration": self.j,
            "objective": xrow["objective"], "data_fidelity": xrow["data_fidelity"], "l1": xrow["l1"],
            "primal_residual": xrow["x_primal_residual"], "dual_residual": xrow["x_dual_residual"],
            "rho": xrow["x_rho"], "constraint": _l2(_pad(Dnew, (H, W)) - G), "delta_d": _l2(Dnew - D),
            "eta": eta, "cbpdn_iterations": iters,
        }
        row = read_row(row)  # the step's statistics in one host read
        self.dictionary = Dnew
        self.j += 1
        self._t_offset += time.perf_counter() - t0
        row["time"] = self._t_offset
        self._rows.append(row)
        return row

    def fit(self, sampler: ImageSampler, steps: int, *, checkpoint: str | Path | None = None,
            checkpoint_every: int = 0, resume: bool = False, progress: bool = False,
            callback: StepCallback | None = None, on_checkpoint: CheckpointCallback | None = None,
            overwrite: bool = False) -> OnlineDictLearnResult:
        """Run until ``steps`` steps have been done in total, on minibatches from ``sampler``.

        ``checkpoint`` is written every ``checkpoint_every`` steps and after the last one
        (dictionary, step, the sampler's generator state, statistics); with ``resume``
        an existing checkpoint is loaded first (its settings, λ, images and initial
        dictionary must match) and the run continues to the same result as an
        uninterrupted one.

        Data parallel: every rank passes an identically made sampler (same images, batch
        size, crop and seed; checked) and the same arguments; only rank 0 writes the
        checkpoint and only rank 0 reads it on resume (the others receive it), so the
        checkpoint path need not be on a shared file system.

        ``on_checkpoint(step)`` is called after each checkpoint is written (the tests kill
        the process there to check that a resumed run loses nothing).

        A file at ``checkpoint`` that is not a checkpoint of this run is refused
        (``FileExistsError`` naming it, nothing written) unless ``overwrite``.
        """
        if not isinstance(sampler, ImageSampler):
            raise TypeError(f"sampler: expected an ImageSampler, got {type(sampler).__name__}")
        steps = check_int("steps", steps, 1)  # 0 steps would hand back the initial dictionary as learnt
        control = RunControl(checkpoint, checkpoint_every, resume, progress, callback, on_checkpoint, overwrite)
        fingerprint = self._fingerprint(sampler)
        self._check_target(control, fingerprint)
        if self.distributed:
            self._check_samplers_agree(sampler)
        if resume and checkpoint is not None:
            self._resume(checkpoint, fingerprint, sampler, steps)
        main_process = self.rank == 0
        bar = control.progress_bar(steps, min(self.j, steps), "step", show=main_process)
        try:
            while self.j < steps:
                row = self.step(sampler.sample()) if sampler.masks is None else self.step(*sampler.sample_with_masks())
                control.after_step(bar, self.j, steps, row, lambda: _checkpoint_payload(
                    {"dictionary": self.dictionary, "rng_state": sampler.get_state()}, self._rows, _STAT_NAMES,
                    fingerprint, step=self.j, elapsed=self._t_offset, steps=steps, dtype=str(self.dictionary.dtype)),
                    write=main_process)
        finally:
            bar.close()
        check_learned(self.dictionary, None)
        return OnlineDictLearnResult(dictionary=self.dictionary, stats=self.stats, steps=self.j)

    def _check_target(self, control: RunControl, fingerprint: dict[str, Any]) -> None:
        """:meth:`RunControl.check_target` on rank 0 (the one that writes), its error raised
        on every rank (data parallel) so that none is left waiting."""
        err = None
        if self.rank == 0:
            try:
                control.check_target(fingerprint)
            except OSError as exc:
                err = (type(exc), str(exc))
        if self.distributed:
            err = _dist.all_gather_object(err)[0]
        if err is not None:
            raise err[0](err[1])

    def _check_samplers_agree(self, sampler: ImageSampler) -> None:
        """Data parallel: every process's sampler the same (images, batch size, crop, state)."""
        views = _dist.all_gather_object((sampler.fingerprint(), tensor_sha256(sampler.get_state())))
        if any(v != views[0] for v in views):
            raise ValueError("sampler: the processes' samplers differ (images, batch size, crop or generator "
                             "state); give every rank the same sampler and seed")

    def _resume(self, checkpoint, fingerprint: dict[str, Any], sampler: ImageSampler, steps: int) -> None:
        """Load ``checkpoint`` when it exists (its settings checked against ``fingerprint``):
        the dictionary, the step count, the statistics, the elapsed time, the sampler's state."""
        loaded = self._read_checkpoint(checkpoint)
        if loaded is None:
            return
        arrays, meta = loaded
        _check_resume(meta, fingerprint, checkpoint)
        D = self.dictionary
        like = {"dictionary": D, "rng_state": sampler.get_state()}
        step = check_checkpoint_state(checkpoint, arrays, meta, like, steps, "steps")
        self.dictionary = torch.from_numpy(arrays["dictionary"]).to(device=D.device, dtype=D.dtype)
        self.j = step
        self._rows = _rows_from_arrays(arrays, _STAT_NAMES)
        self._t_offset = _elapsed(meta)
        sampler.set_state(arrays["rng_state"])

    def _fingerprint(self, sampler: ImageSampler) -> dict[str, Any]:
        """What a checkpoint and a resumed run must share: settings, λ, images, start."""
        opts = _jsonable(self.options)
        opts.pop("device", None)
        for k in ("record_stats", "sync_interval", "device", "dtype"):
            opts["cbpdn"].pop(k, None)
        if opts.get("dict_size", 0) is None:  # added later: absent from the checkpoints of before
            opts.pop("dict_size")
        return dict({"learner": "online", "lmbda": self.lmbda, "options": opts,
                     "initial_dictionary_sha256": tensor_sha256(self.initial_dictionary)}, **sampler.fingerprint())

    def _read_checkpoint(self, checkpoint):
        """(arrays, metadata) of an existing checkpoint, else None; data parallel, rank 0
        reads it and the others receive it (a failure there is raised on every rank)."""
        if not self.distributed:
            return load_checkpoint(checkpoint) if Path(checkpoint).is_file() else None
        payload: Any = None
        if self.rank == 0 and Path(checkpoint).is_file():
            try:
                payload = load_checkpoint(checkpoint)
            except Exception as exc:  # noqa: BLE001
                payload = exc
        payload = _dist.broadcast_object(payload)
        if isinstance(payload, BaseException):
            raise payload
        return payload
