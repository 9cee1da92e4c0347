r"""Amortised warm starts: a predictor of CBPDN codes from images, trained on codes csc computed.

Coding a dataset with one dictionary solves the same problem many times; a small network
trained on the first images' codes predicts each new image's code, and ADMM starts from it
(:meth:`csc.ConvBPDN.solve` with ``warm_start=``) and runs to the same tolerance, so the
result is still the CBPDN solution — only the number of iterations changes.

The predictor, :class:`UnrolledISTA`, is T steps of ISTA on
:math:`\tfrac12\|\sum_k d_k * y_k - s\|^2 + \lambda\|y\|_1` with a learned step
:math:`\eta_t`, a learned threshold :math:`\theta_{t,k}` per step and kernel and learned
analysis kernels :math:`w_k` that start from the dictionary (LISTA, Gregor and LeCun 2010,
with the dictionary's convolutions kept):

.. math::
    y^{(1)} = \mathcal S_{\theta_1}\big(\eta_1\, W^T s\big),\qquad
    y^{(t+1)} = \mathcal S_{\theta_{t+1}}\big(y^{(t)} - \eta_{t+1}\, W^T (D y^{(t)} - s)\big),

with :math:`\mathcal S_\theta(v) = \operatorname{sign}(v)\max(|v| - \theta, 0)` and the
convolutions circular, in the DFT domain (:mod:`csc.core.ops`; kernels zero-padded at the
top-left origin, as the solver's). At initialisation :math:`w = d`, :math:`\eta_t = 1/L`
and :math:`\theta_{t,k} = \lambda/L` (L: the largest eigenvalue of DᵀD), i.e. plain ISTA;
training (:func:`train_warm_start`) minimises the codes' relative error
:math:`\sum_i \|y_i^{(T)} - y_i^\star\|^2 / \sum_i \|y_i^\star\|^2` over batches, by Adam.

The starting ρ of the warm solves is the median of the final ρ of the training
solves (:attr:`WarmStartPredictor.rho`); the dual comes from the optimality condition
(:meth:`csc.ConvBPDN.solve`).

Files (:meth:`WarmStartPredictor.save`, :func:`load_warm_start`) are pickle-free ``.npz``:
the parameters as arrays and a JSON ``metadata`` string recording the dictionary's
fingerprint (:func:`dictionary_fingerprint`), λ, the preprocessing, the options, ρ and the
training's record. Loading refuses a file trained for another dictionary or λ.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csc.core import ops
from csc.core.checks import as_float_tensor, check_bool, check_finite, check_instance, check_int, check_number
from csc.dictionary.io import atomic_write, check_output_file, json_metadata, read_npz, sha256_of_array

__all__ = ["WarmStartOptions", "UnrolledISTA", "WarmStartPredictor", "train_warm_start", "fit_warm_start",
           "load_warm_start", "dictionary_fingerprint", "WARM_START_FORMAT"]

WARM_START_FORMAT = "csc-warm-start"
_VERSION = 1
_PARAMS = ("kernels", "log_step", "log_threshold")


def dictionary_fingerprint(dictionary) -> str:
    """SHA-256 of the kernels rounded to float32 (:func:`csc.dictionary.io.sha256_of_array`),
    so the float32 and float64 copies of one dictionary have the same fingerprint."""
    D = as_float_tensor("dictionary", dictionary).detach()
    return sha256_of_array(D.cpu().to(torch.float32).numpy())


@dataclass(frozen=True)
class WarmStartOptions:
    """The predictor's shape and its training.

    Attributes
    ----------
    steps : int
        Unrolled ISTA steps T (default 5; each costs about one ADMM iteration).
    learn_kernels : bool
        Learn the analysis kernels w (starting from the dictionary); False keeps w = d and
        learns only the steps and thresholds (default True).
    epochs : int
        Passes over the training images (default 30).
    batch_size : int
        Images per Adam step (default 8).
    learning_rate : float
        Adam's step size (default 1e-2; the parameters are log-steps, log-thresholds and
        kernels of unit scale).
    """

    steps: int = 5
    learn_kernels: bool = True
    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 1e-2

    def __post_init__(self):
        check_int("steps", self.steps, 1)
        object.__setattr__(self, "learn_kernels", check_bool("learn_kernels", self.learn_kernels))
        check_int("epochs", self.epochs, 0)
        check_int("batch_size", self.batch_size, 1)
        check_number("learning_rate", self.learning_rate, minimum=0, strict=True)


class UnrolledISTA(torch.nn.Module):
    r"""T learned ISTA steps from images (n, H, W) to codes (n, K, H, W) (module docstring).

    Parameters
    ----------
    dictionary : (K, kh, kw)
        The coding dictionary d (a buffer, not learned).
    lmbda : float
        λ, for the initial thresholds λ/L.
    steps : int
        T.
    learn_kernels : bool
        Whether the analysis kernels w (initialised to d) are learned.
    """

    def __init__(self, dictionary: torch.Tensor, lmbda: float, steps: int = 5, learn_kernels: bool = True):
        super().__init__()
        D = dictionary.detach()
        if D.ndim != 3:
            raise ValueError(f"dictionary: the warm-start predictor takes a single-channel dictionary (K, kh, kw), "
                             f"got shape {tuple(D.shape)}")
        self.register_buffer("dictionary", D.clone())
        L = float(ops.gram_diagonal(ops.kernel_dft(D.double(), (64, 64))).max())
        kernels = D.clone()
        self.kernels = torch.nn.Parameter(kernels, requires_grad=bool(learn_kernels))
        self.log_step = torch.nn.Parameter(torch.full((steps,), -math.log(L), dtype=D.dtype, device=D.device))
        thr = math.log(max(float(lmbda), 1e-12) / L)
        self.log_threshold = torch.nn.Parameter(torch.full((steps, D.shape[0]), thr, dtype=D.dtype, device=D.device))

    @property
    def steps(self) -> int:
        return self.log_step.shape[0]

    def forward(self, images: torch.Tensor, dictionary: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (n, K, H, W) predicted for images (n, H, W); ``dictionary``: the synthesis
        kernels d to use (default the buffer; a solve passes its own copy, in its dtype)."""
        H, W = images.shape[-2:]
        dt = images.dtype
        Df = ops.kernel_dft((self.dictionary if dictionary is None else dictionary).to(dt), (H, W))
        Wf = ops.kernel_dft(self.kernels.to(dt), (H, W)).conj()
        Sf = torch.fft.rfft2(images)
        step, thr = self.log_step.to(dt).exp(), self.log_threshold.to(dt).exp()
        y = None
        for t in range(self.steps):
            Rf = -Sf if y is None else ops.synthesis_dft(Df, torch.fft.rfft2(y)) - Sf  # D y − s
            grad = torch.fft.irfft2(Wf.unsqueeze(0) * Rf.unsqueeze(1), s=(H, W))  # Wᵀ(D y − s)
            v = -step[t] * grad if y is None else y - step[t] * grad
            y = torch.sign(v) * torch.relu(v.abs() - thr[t].view(1, -1, 1, 1))
        return y


@dataclass
class WarmStartPredictor:
    """A trained :class:`UnrolledISTA` with what it was trained for; the warm-start protocol of
    :meth:`csc.ConvBPDN.solve` (:meth:`warm_start`).

    Attributes
    ----------
    model : UnrolledISTA
    lmbda : float
        The λ of the training codes.
    fingerprint : str
        :func:`dictionary_fingerprint` of the training dictionary.
    rho : float
        Starting ρ of warm solves: the median of the training solves' final ρ.
    options : WarmStartOptions
    preprocessing : dict
        How the coded signals were made from images (recorded; e.g. ``{"kind": "highpass"}``).
    record : dict
        The training's record: images, epochs' losses, seconds of coding and of training.
    """

    model: UnrolledISTA
    lmbda: float
    fingerprint: str
    rho: float
    options: WarmStartOptions = field(default_factory=WarmStartOptions)
    preprocessing: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)

    def warm_start(self, images: torch.Tensor, dictionary: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, float]:
        """(y0 (n, K, H, W), ρ₀) for the signals ``images`` (n, H, W), in their dtype and on their
        device; ValueError when ``dictionary`` or ``lmbda`` is not the one trained for."""
        self.check_for(dictionary, lmbda)
        model = self.model.to(device=images.device)
        with torch.no_grad():
            y0 = model(images.detach(), dictionary.detach())
        return y0, self.rho

    def check_for(self, dictionary, lmbda: float, what: str = "warm_start") -> None:
        """ValueError naming ``what`` unless this predictor was trained for ``dictionary`` and ``lmbda``."""
        fp = dictionary_fingerprint(dictionary)
        if fp != self.fingerprint:
            raise ValueError(f"{what}: the predictor was trained for another dictionary (fingerprint "
                             f"{self.fingerprint[:12]}…, this one {fp[:12]}…); train one for this dictionary")
        if not math.isclose(float(lmbda), self.lmbda, rel_tol=1e-12, abs_tol=0.0):
            raise ValueError(f"{what}: the predictor was trained for λ = {self.lmbda:g}, not {float(lmbda):g}; "
                             "train one for this λ")

    def metadata(self) -> dict[str, Any]:
        """The file's JSON metadata."""
        D = self.model.dictionary
        return {"format": WARM_START_FORMAT, "version": _VERSION, "model": "UnrolledISTA",
                "dictionary_sha256": self.fingerprint, "dictionary_shape": list(D.shape), "lmbda": self.lmbda,
                "rho": self.rho, "options": asdict(self.options), "preprocessing": self.preprocessing,
                "dtype": str(D.dtype).replace("torch.", ""), "record": self.record}

    def save(self, path: str | Path) -> Path:
        """Write the predictor to a pickle-free ``.npz`` (module docstring); returns the path."""
        path = check_output_file("path", path)
        arrays = {name: getattr(self.model, name).detach().cpu().numpy() for name in _PARAMS}
        arrays["metadata"] = np.array(json.dumps(self.metadata(), sort_keys=True, default=float))
        return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_warm_start(path: str | Path, dictionary, lmbda: float, preprocessing: dict | None = None
                    ) -> WarmStartPredictor:
    """The predictor in ``path`` for ``dictionary`` (K, kh, kw) and ``lmbda``: ValueError when the
    file was trained for another dictionary (by :func:`dictionary_fingerprint`), another λ, or
    (when given) another ``preprocessing``, or is not a warm-start file."""
    arrays = read_npz(path, "warm_start")
    meta = json_metadata(arrays["metadata"], path, "warm_start") if "metadata" in arrays else {}
    if meta.get("format") != WARM_START_FORMAT or any(k not in arrays for k in _PARAMS):
        raise ValueError(f"warm_start: {str(path)!r} is not a csc warm-start file (format {meta.get('format')!r})")
    if meta.get("version") != _VERSION:
        raise ValueError(f"warm_start: {str(path)!r} has version {meta.get('version')}, this csc reads {_VERSION}")
    D = as_float_tensor("dictionary", dictionary).detach()
    opts = WarmStartOptions(**meta["options"])
    model = UnrolledISTA(D.to(getattr(torch, meta["dtype"])), float(meta["lmbda"]), opts.steps, opts.learn_kernels)
    pred = WarmStartPredictor(model, float(meta["lmbda"]), meta["dictionary_sha256"], float(meta["rho"]), opts,
                              dict(meta.get("preprocessing") or {}), dict(meta.get("record") or {}))
    pred.check_for(D, lmbda)
    if preprocessing is not None and dict(preprocessing) != pred.preprocessing:
        raise ValueError(f"warm_start: the predictor was trained on signals preprocessed as {pred.preprocessing}, "
                         f"not {dict(preprocessing)}")
    with torch.no_grad():
        for name in _PARAMS:
            p, a = getattr(model, name), torch.from_numpy(arrays[name])
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"warm_start: {str(path)!r}: {name} has shape {tuple(a.shape)}, expected "
                                 f"{tuple(p.shape)} for this dictionary")
            p.copy_(a)
    return pred


def _check_training_set(images, codes, dictionary) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (n, H, W), codes (n, K, H, W) and the dictionary (K, kh, kw) checked, in one dtype."""
    D = as_float_tensor("dictionary", dictionary).detach()
    if D.ndim != 3:
        raise ValueError(f"dictionary: expected a single-channel dictionary (K, kh, kw), got shape {tuple(D.shape)}")
    S = as_float_tensor("images", images, D.dtype, D.device).detach()
    Y = as_float_tensor("codes", codes, D.dtype, D.device).detach()
    if S.ndim != 3 or S.shape[0] == 0:
        raise ValueError(f"images: expected a batch (n, H, W) of at least one signal, got shape {tuple(S.shape)}")
    if tuple(Y.shape) != (S.shape[0], D.shape[0]) + tuple(S.shape[1:]):
        raise ValueError(f"codes: expected shape {(S.shape[0], D.shape[0]) + tuple(S.shape[1:])} (images × "
                         f"kernels × H × W), got {tuple(Y.shape)}")
    check_finite("images", S)
    check_finite("codes", Y)
    return S, Y, D


def train_warm_start(images, codes, dictionary, lmbda: float, rho: float, *,
                     options: WarmStartOptions | None = None, generator: torch.Generator | None = None,
                     preprocessing: dict | None = None, progress: bool = False) -> WarmStartPredictor:
    r"""Train an :class:`UnrolledISTA` to predict ``codes`` (n, K, H, W) from ``images`` (n, H, W).

    Minimises each batch's relative error :math:`\sum_i \|y^{(T)}(s_i) - y_i^\star\|^2 /
    \sum_i \|y_i^\star\|^2` by Adam over ``options.epochs``
    passes of shuffled batches. ``generator`` (a :class:`torch.Generator` on the CPU) draws the
    order; the same generator state gives the same predictor on the same device. ``rho``: the
    starting ρ recorded for warm solves; ``preprocessing``: recorded in the file. The images
    and codes are the dictionary's dtype and device (the training runs there).
    """
    opts = options if options is not None else WarmStartOptions()
    check_instance("options", opts, WarmStartOptions, "WarmStartOptions(steps=5)")
    check_instance("generator", generator, torch.Generator, "torch.Generator().manual_seed(0)")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    rho = check_number("rho", rho, minimum=0, strict=True)
    lmbda = check_number("lmbda", lmbda, minimum=0)
    progress = check_bool("progress", progress)
    S, Y, D = _check_training_set(images, codes, dictionary)
    model = UnrolledISTA(D, lmbda, opts.steps, opts.learn_kernels)
    params = [p for p in model.parameters() if p.requires_grad]
    adam = torch.optim.Adam(params, lr=opts.learning_rate)
    n, losses, t0 = S.shape[0], [], time.perf_counter()
    tiny = torch.finfo(Y.dtype).tiny
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=opts.epochs, unit="epoch", desc="warm-start training")
    for _ in range(opts.epochs):
        order, total = torch.randperm(n, generator=gen).to(S.device), 0.0
        for lo in range(0, n, opts.batch_size):
            idx = order[lo:lo + opts.batch_size]
            target = Y[idx]
            loss = (model(S[idx]) - target).square().sum() / target.square().sum().clamp_min(tiny)
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()
            total += loss.detach() * idx.numel()
        losses.append(float(total) / n)  # one host read per epoch
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3g}")
    if bar is not None:
        bar.close()
    record = {"images": n, "losses": losses, "train_seconds": time.perf_counter() - t0}
    return WarmStartPredictor(model, lmbda, dictionary_fingerprint(D), rho, opts, dict(preprocessing or {}), record)


def fit_warm_start(solver, images, *, options: WarmStartOptions | None = None,
                   generator: torch.Generator | None = None, preprocessing: dict | None = None,
                   progress: bool = False) -> tuple[WarmStartPredictor, Any]:
    """Code ``images`` (n, H, W) cold with ``solver`` (a :class:`csc.ConvBPDN`), then train a
    predictor on them (:func:`train_warm_start`, in the solver's dtype, on the images' device);
    its ρ is the median of the solves' final ρ (robust to the ρ of an image whose code is zero,
    which residual balancing drives up without bound). Returns (predictor, the cold result);
    the predictor's record holds the seconds of coding (``code_seconds``) and training."""
    from csc.problems.cbpdn import ConvBPDN, solve_in_batches

    check_instance("solver", solver, ConvBPDN, "csc.ConvBPDN(D, lmbda)")
    t0 = time.perf_counter()
    result = solve_in_batches(solver, images)
    code_seconds = time.perf_counter() - t0
    S = as_float_tensor("images", images, result.codes.dtype, result.codes.device).detach()
    rho = float(result.rho.double().median())
    pred = train_warm_start(S, result.codes, result.dictionary, solver.lmbda, rho, options=options,
                            generator=generator, preprocessing=preprocessing, progress=progress)
    pred.record.update(code_seconds=code_seconds, code_iterations=int(result.iterations.sum()))
    return pred, result
