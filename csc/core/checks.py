"""Input validation shared by every public entry point.

Each check raises an error that names the argument and says what was expected, so a
user never has to read a traceback from deep inside an FFT to learn that an image held
a NaN.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterable

import numpy as np
import torch

from csc.runtime.flags import check_bool  # noqa: F401  (re-exported: the one check of every flag)

__all__ = [
    "as_float_tensor",
    "check_bool",
    "check_finite",
    "check_float_dtype",
    "check_images",
    "check_instance",
    "check_int",
    "check_ndim",
    "check_nonnegative",
    "check_not_channels_last",
    "check_number",
    "check_scale",
    "DeviceCopies",
    "explain_out_of_memory",
    "prepare_dictionary",
    "working_device",
]



def host_array(value, dtype=None) -> np.ndarray:
    """``value`` as a numpy array: tensors (on any device: CUDA ones are copied to the host
    first, which ``np.asarray`` cannot do) or anything ``np.asarray`` takes."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)


def _as_tensor(name: str, value) -> torch.Tensor:
    """``value`` as a dense tensor holding data: sparse, meta-device and object arrays refused
    with a TypeError naming ``name`` (they would fail deep inside the solve)."""
    if isinstance(value, torch.Tensor):
        t = value
    else:
        arr = value if isinstance(value, np.ndarray) else _as_array(name, value)
        if arr.dtype == object:
            raise TypeError(f"{name}: expected numbers, got an array of Python objects (dtype object); "
                            "convert it first, e.g. np.asarray(x, dtype=np.float32)")
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr)) if isinstance(value, np.ndarray) else torch.as_tensor(arr)
    if t.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense tensor, got a sparse one ({t.layout}); convert it with "
                        f"{name}.to_dense()")
    if t.device.type == "meta":
        raise TypeError(f"{name}: a tensor on the 'meta' device holds no data; give one on 'cpu' or 'cuda'")
    return t


def _as_array(name: str, value) -> np.ndarray:
    try:
        return np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected a tensor or array, got {type(value).__name__}") from exc


def as_float_tensor(
    name: str,
    value,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    *,
    integers: bool = False,
) -> torch.Tensor:
    """Convert ``value`` (tensor, ndarray or nested sequence) to a floating tensor.

    Integer and boolean input is rejected (also when a ``dtype`` is given) rather than
    silently rescaled: the caller must decide what an integer pixel value means.
    ``integers=True`` accepts them (weights, where 1 means 1).
    """
    t = _as_tensor(name, value)
    if not (integers or t.is_floating_point() or t.is_complex()):
        raise TypeError(
            f"{name}: expected a floating-point tensor (float32 or float64), got {t.dtype}; "
            "convert it first, e.g. images.float() / 255"
        )
    if t.is_complex():
        raise TypeError(f"{name}: expected a real tensor, got {t.dtype}")
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype or t.dtype, device=device or t.device)
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name}: expected float32 or float64, got {t.dtype}")
    return t


def check_finite(name: str, t: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN or Inf."""
    if not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name}: expected finite values, found {n_bad} NaN/Inf entries")


def check_ndim(name: str, t: torch.Tensor, allowed: Iterable[int], layout: str) -> None:
    """Raise ``ValueError`` unless ``t.ndim`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if t.ndim not in allowed:
        raise ValueError(
            f"{name}: expected {' or '.join(map(str, allowed))} dimensions ({layout}), "
            f"got shape {tuple(t.shape)}"
        )


def check_nonnegative(name: str, value: float) -> float:
    """Return ``value`` as a float, raising unless it is a finite number ≥ 0 (a 0-d
    array or tensor counts; a string or bool does not)."""
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0 and not value.dtype == torch.bool \
            and value.dtype != np.bool_:
        value = value.item()
    return check_number(name, value, minimum=0)


def check_weights(name: str, w, like: torch.Tensor) -> "float | torch.Tensor":
    """Non-negative finite weights: a float for a scalar (or a 0-d array), else a tensor of
    ``like``'s dtype and device (its shape is the caller's to check)."""
    if isinstance(w, (int, float, np.floating, np.integer)) and not isinstance(w, bool):
        return check_nonnegative(name, w)
    if isinstance(w, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name}: expected a number or an array of weights, got {w!r}")
    wt = as_float_tensor(name, w, like.dtype, like.device, integers=True)
    if wt.dtype == torch.bool:
        raise TypeError(f"{name}: expected numeric weights, got a boolean array")
    check_finite(name, wt)
    if bool((wt < 0).any()):
        raise ValueError(f"{name}: expected weights >= 0, found negative entries")
    return float(wt) if wt.ndim == 0 else wt


def _is_real(v) -> bool:
    """A real number given as a number (bools and strings are not numbers here)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def check_number(name: str, v, *, minimum: float | None = None, maximum: float | None = None,
                 strict: bool = False, none: bool = False) -> float | None:
    """``v`` as a float: a finite real number (not a string or bool) within the bounds
    (``strict``: both bounds exclusive), or None when ``none``. TypeError for a wrong type,
    ValueError for a value out of range; both name ``name``."""
    if v is None and none:
        return None
    if not _is_real(v):
        what = "None or a number" if none else "a number"
        raise TypeError(f"{name}: expected {what}, got {v!r} ({type(v).__name__})")
    f = float(v)
    lo_bad = minimum is not None and (f <= minimum if strict else f < minimum)
    hi_bad = maximum is not None and (f >= maximum if strict else f > maximum)
    if not math.isfinite(f) or lo_bad or hi_bad:
        lo = f"{'>' if strict else '>='} {minimum:g}" if minimum is not None else ""
        hi = f"{'<' if strict else '<='} {maximum:g}" if maximum is not None else ""
        rng = " and ".join(p for p in (lo, hi) if p)
        raise ValueError(f"{name}: expected a finite value{' ' + rng if rng else ''}, got {v!r}")
    return f


def check_int(name: str, v, minimum: int | None = None, *, none: bool = False) -> int | None:
    """``v`` as an int: an integer (not a bool, float or string) ≥ ``minimum``, or None when ``none``."""
    if v is None and none:
        return None
    if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
        what = "None or an integer" if none else "an integer"
        err = ValueError if _is_real(v) else TypeError  # 2.5 is a wrong value; "2" or True a wrong type
        raise err(f"{name}: expected {what}, got {v!r} ({type(v).__name__})")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v!r}")
    return int(v)


def check_instance(name: str, value, cls: type, example: str, *, none: bool = True):
    """``value`` itself when it is a ``cls`` (or None when ``none``); a TypeError naming
    ``name`` and showing ``example`` otherwise."""
    if (value is None and none) or isinstance(value, cls):
        return value
    raise TypeError(f"{name}: expected {'None or ' if none else ''}a {cls.__name__} (e.g. {example}), got {value!r}")


def check_float_dtype(name: str, value) -> torch.dtype | None:
    """None, or float32/float64 given as a torch dtype, a numpy dtype or its name
    ('float32'); ValueError naming ``name`` for anything else."""
    if value is None or value in (torch.float32, torch.float64):
        return value
    try:
        np_name = None if isinstance(value, torch.dtype) else np.dtype(value).name
    except TypeError:
        np_name = None
    if np_name in ("float32", "float64"):
        return getattr(torch, np_name)
    raise ValueError(f"{name}: expected None, torch.float32 or torch.float64 (or 'float32', 'float64'), "
                     f"got {value!r}")


def check_not_channels_last(name: str, t: torch.Tensor, layout: str) -> None:
    """Refuse an (H, W, 3) / (H, W, 4) colour image (or an (N, H, W, 3) batch), which a
    batch-first function would filter along the wrong axes."""
    looks = t.ndim in (3, 4) and t.shape[-1] in (3, 4) and t.shape[-2] > 4 and t.shape[-3] > 4
    if looks:
        batch = (f"; a batch of {t.shape[0]} images of {t.shape[1]}×{t.shape[2]} pixels is read the same way: "
                 f"pass it as {name}[:, None], shape (B, 1, H, W)") if t.ndim == 3 else ""
        raise ValueError(
            f"{name}: shape {tuple(t.shape)} looks like a channels-last colour image (..., H, W, "
            f"{t.shape[-1]}); expected {layout}: move the channel axis first (e.g. "
            f"image.permute(2, 0, 1)) or convert to grey{batch}"
        )


def check_images(name: str, S: torch.Tensor) -> None:
    """Images for a solve: at least one, finite, and of a scale the iteration can square
    (:func:`check_scale`); ValueError naming ``name``. One host read (the extremes)."""
    if S.numel() == 0:
        raise ValueError(f"{name}: expected at least one image, got shape {tuple(S.shape)}")
    lo, hi = torch.stack([S.detach().min(), S.detach().max()]).to(torch.float64).cpu().tolist()
    if not (math.isfinite(lo) and math.isfinite(hi)):  # min and max propagate NaN
        check_finite(name, S)
    m = max(-lo, hi)
    _check_magnitude(name, S.dtype, m, m * m, "images")


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def check_scale(name: str, t: torch.Tensor, gram: bool = False) -> None:
    """Refuse values the iteration cannot square in ``t``'s dtype: its largest magnitude m
    (``gram``: a dictionary's Σ_k ‖d_k‖₁², which bounds its Gram matrix in the DFT domain,
    instead of m²) must lie within [tiny·64, max/64] of the dtype (max/2 for ``gram``; float32:
    m between about 1e-18 and 2e18), else the squared norms overflow to Inf or underflow to 0
    and the codes come out wrong (often all zero) without a NaN. All-zero input is allowed."""
    a = t.detach().abs()
    m = float(a.max())
    sq = float(a.reshape(a.shape[0], -1).sum(1).to(torch.float64).square().sum()) if gram else m * m
    _check_magnitude(name, t.dtype, m, sq, name, gram)


def _check_magnitude(name: str, dtype: torch.dtype, m: float, sq: float, what: str, gram: bool = False) -> None:
    info = torch.finfo(dtype)
    if m == 0.0 or info.tiny * 64 <= sq <= info.max / (2 if gram else 64):
        return
    big = sq > 1
    raise ValueError(
        f"{name}: values up to {m:.3g} are too {'large' if big else 'small'} for {str(dtype).replace('torch.', '')}: "
        f"the iteration squares them, which would {'overflow' if big else 'underflow'} and give wrong (often "
        f"all-zero) codes; scale the {what} to a moderate range (e.g. images in [0, 1], kernels of unit norm) or "
        "use float64"
    )


def prepare_dictionary(value, dtype: torch.dtype | None = None, device=None, *,
                       multichannel: bool = False) -> torch.Tensor:
    """A dictionary as a detached floating tensor, checked: (K, kh, kw), or also
    (K, C, kh, kw) when ``multichannel``; non-empty, finite, and not in SPORCO's layout
    ((kh, kw, K) or (kh, kw, C, K))."""
    D = as_float_tensor("dictionary", value, dtype, device).detach()
    if D.ndim == 4 and not multichannel:
        raise ValueError(
            f"dictionary: multi-channel dictionaries (K, C, kh, kw) are not supported here; got shape "
            f"{tuple(D.shape)}. Pass a single-channel (K, kh, kw) dictionary"
        )
    check_ndim("dictionary", D, (3, 4) if multichannel else (3,),
               "(K, kh, kw) or (K, C, kh, kw)" if multichannel else "(K, kh, kw)")
    if min(D.shape) == 0:
        raise ValueError(f"dictionary: expected a non-empty tensor, got shape {tuple(D.shape)}")
    sporco = D.shape[0] == D.shape[1] != D.shape[2] if D.ndim == 3 else \
        D.shape[0] == D.shape[1] and D.shape[2] != D.shape[3]
    if sporco:
        spatial = f"{D.shape[0]}×{D.shape[1]}"
        raise ValueError(
            f"dictionary: shape {tuple(D.shape)} looks like SPORCO's (kh, kw{', C' if D.ndim == 4 else ''}, K) "
            f"layout ({D.shape[-1]} kernels of {spatial}); csc's is (K{', C' if D.ndim == 4 else ''}, kh, kw): "
            "convert with csc.from_sporco_layout(D, 'dictionary'). (Kernels whose leading two axes are "
            "equal and whose trailing two differ are refused for this reason: transpose kernels and images.)"
        )
    check_finite("dictionary", D)
    check_scale("dictionary", D, gram=True)
    return D


def check_image_size(name: str, H: int, W: int, kernel_shape) -> None:
    """Each image at least as large as the kernels."""
    kh, kw = kernel_shape
    if kh > H or kw > W:
        raise ValueError(f"{name}: each image ({H}×{W}) must be at least as large as the kernels ({kh}×{kw})")


def check_solution(codes: torch.Tensor, images: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``images`` when a solve produced NaN/Inf codes from finite
    input: values so large that the iteration's squared norms overflow the dtype."""
    if not bool(torch.isfinite(codes).all()):
        big = float(images.abs().max())
        raise ValueError(
            f"images: the solve overflowed {str(images.dtype).replace('torch.', '')} (largest |value| "
            f"{big:.3g}); scale the images to a moderate range (e.g. [0, 1]) or use float64"
        )


def check_learned(D: torch.Tensor, images: torch.Tensor | None) -> None:
    """Raise ``ValueError`` naming ``images`` when learning produced a NaN/Inf dictionary
    (finite input so large that the iteration overflowed its dtype)."""
    if not bool(torch.isfinite(D).all()):
        big = f" (largest |value| {float(images.abs().max()):.3g})" if images is not None else ""
        raise ValueError(
            f"images: dictionary learning overflowed {str(D.dtype).replace('torch.', '')}{big}; scale the "
            "images to a moderate range (e.g. [0, 1]) or use float64"
        )


def check_colour_images(S: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """Images (C, H, W) or (B, C, H, W) for a multi-channel dictionary D (K, C, kh, kw), as
    (n, C, H, W); ValueError naming ``images`` for another layout or channel count."""
    C = D.shape[1]
    layout = f"(C, H, W) or (B, C, H, W) with C = {C}, the dictionary's channels"
    check_ndim("images", S, (3, 4), layout)
    check_not_channels_last("images", S, layout)
    if S.shape[-3] != C:
        raise ValueError(f"images: shape {tuple(S.shape)} has {S.shape[-3]} channels but the dictionary "
                         f"{tuple(D.shape)} has {C}; expected {layout}")
    return S.reshape(-1, *S.shape[-3:])


def broadcast_weights(name: str, w, like: torch.Tensor, K: int, target, lead=()) -> "float | torch.Tensor":
    """Weights of K coefficient maps: a float, or a 4-D tensor broadcasting to ``target``
    (n, K, H, W): a scalar, (K,), (K, H, W), (n, K, H, W), or ``lead`` + (K, H, W) for an
    input of leading axes ``lead``. ValueError naming ``name`` otherwise."""
    return shape_weights(name, check_weights(name, w, like), K, target, lead)


def _broadcasts(shape, to) -> bool:
    """Whether ``shape`` broadcasts to ``to`` (same length)."""
    return all(a in (1, b) for a, b in zip(shape, to))


def shape_weights(name: str, wt: "float | torch.Tensor", K: int, target, lead=()) -> "float | torch.Tensor":
    """:func:`broadcast_weights` of weights already checked by :func:`check_weights` (a float,
    or a tensor on the working device): reshaped to broadcast to ``target``, without a copy."""
    if isinstance(wt, float):
        return wt
    if wt.ndim == 1:
        if wt.shape[0] not in (1, K):
            raise ValueError(f"{name}: a 1-D weight must have K={K} entries, got {wt.shape[0]}")
        wt = wt.reshape(1, -1, 1, 1)
    if len(lead) > 1 and wt.ndim == len(lead) + 3 and _broadcasts(wt.shape[:len(lead)], lead):
        # lead + (K, H, W), or broadcasting to it ((1, C, K, 1, 1): channel-dependent weights)
        wt = wt.expand(tuple(lead) + tuple(wt.shape[len(lead):])).reshape((target[0],) + tuple(wt.shape[len(lead):]))
    try:
        if torch.broadcast_shapes(wt.shape, target) != torch.Size(target):
            raise RuntimeError
    except RuntimeError:
        raise ValueError(
            f"{name}: shape {tuple(wt.shape)} does not broadcast to the codes' shape {tuple(target)} "
            "(expected a scalar, (K,), (K, H, W) or (B, K, H, W))"
        ) from None
    while wt.ndim < 4:
        wt = wt.unsqueeze(0)
    return wt


def working_device(images, option=None, default=None) -> torch.device:
    """The device a solve or a learning step works on, the one rule of every solver and learner
    when the images and the dictionary (or a mask, or weights) are on different devices:

    1. ``option`` (the options' ``device``) when it is set: everything is moved there;
    2. else the device of ``images`` when they are a tensor: the dictionary and the solver's
       other constants follow them (moved once per device, :class:`DeviceCopies`);
    3. else (an array or a list, which has no device) ``default``, the dictionary's device
       (the CPU when None).

    Only devices are inspected (no data is read or moved); the dtype rule is separate (a
    mismatch is the caller's error)."""
    if option is not None:
        return option if isinstance(option, torch.device) else torch.device(option)
    if isinstance(images, torch.Tensor):
        return images.device
    if default is None:
        return torch.device("cpu")
    return default if isinstance(default, torch.device) else torch.device(default)


class DeviceCopies:
    """A solver's constants (its dictionary, weights given as arrays or tensors, what it derives
    from them) as used on each device it has worked on, each made once: a second solve on a
    device reuses the first one's copy instead of copying again.

    ``get(name, source, key, make)`` returns ``make()`` the first time it is asked for
    ``name`` at ``key`` (a device, or a (device, dtype, …) tuple) and the same object after
    that, as long as ``source`` is the object it was made from (by identity): giving the
    solver another dictionary or other options makes fresh copies. The copies live as long as
    the solver (:meth:`clear` drops them, to free a device's memory)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[object, dict]] = {}

    def get(self, name: str, source, key, make):
        entry = self._entries.get(name)
        if entry is None or entry[0] is not source:
            entry = (source, {})
            self._entries[name] = entry
        copies = entry[1]
        if key not in copies:
            copies[key] = make()
        return copies[key]

    def clear(self) -> None:
        """Drop every copy."""
        self._entries.clear()

    def __len__(self) -> int:
        return sum(len(c) for _, c in self._entries.values())


def on_device(copies: DeviceCopies, name: str, t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``: ``t`` itself when it is there, else its copy there, made once
    (``copies``, under ``name``)."""
    if t.device == device:
        return t
    return copies.get(name, t, device, lambda: t.to(device))


def _is_allocation_failure(exc: BaseException) -> bool:
    """A failed allocation: Python's MemoryError, torch's out-of-memory error, or the CPU
    allocator's RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    oom = getattr(torch, "OutOfMemoryError", ())
    return isinstance(exc, (MemoryError, oom)) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


@contextmanager
def explain_out_of_memory(name: str, S: torch.Tensor, maps: int):
    """Re-raise a failed allocation in the body with how much the solve of images ``S`` (n,
    …, H, W) with ``maps`` coefficient maps per image needs and how to need less: a
    ``torch.OutOfMemoryError`` on CUDA (batch splitting still recognises it), a MemoryError
    elsewhere."""
    try:
        yield
    except BaseException as exc:
        if not _is_allocation_failure(exc):
            raise
        n, (H, W) = S.shape[0], S.shape[-2:]
        one = n * maps * H * W * S.element_size()
        msg = (f"{name}: out of memory on {S.device} solving {n} image(s) of {H}×{W} with {maps} coefficient maps "
               f"each in {_dtype_name(S)}: every array of codes takes {_gib(one)} and a solve holds about six "
               f"(~{_gib(6 * one)}); solve fewer images at a time (csc.encode and csc.solve_in_batches size the "
               "batches to the memory), or use smaller images, fewer kernels or float32")
        if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
            raise type(exc)(msg) from exc
        raise MemoryError(msg) from None
