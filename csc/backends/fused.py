r"""The numba runtime of the fused CPU back end: kernel loading, the thread pool, planned FFTs.

Which back end runs a solve is chosen in :mod:`csc.backends.registry`; the fused workspaces
(:mod:`csc.backends.numba_cpu`, :mod:`csc.backends.numba_twoblock`, …) run their kernels
through this module. Why the fused path exists:

The torch loop of :meth:`csc.ConvBPDN.solve` makes about 45 passes over a coefficient
map per iteration outside its FFTs (each elementwise operation, the K×H×W complex
temporary of ``einsum``, five norms each written to scratch and summed), and torch's
CPU FFT (MKL) is several times slower than FFTW on these batched 2-D real transforms.
On CPU the solver instead runs, per iteration:

1. forward real FFT of t = y − u (FFTW through pyFFTW, else ``scipy.fft``);
2. :func:`csc.backends.kernels.xstep`: the Sherman–Morrison x-step in place in the DFT domain
   (reads D̂ and x̂ once, writes x̂ once, with the inverse FFT's 1/(H·W) folded in);
3. inverse real FFT into x;
4. :func:`csc.backends.kernels.ystep`: relaxation, soft thresholding, constraints, dual update,
   the next FFT input t and the five residual sums (plus the ℓ1 term when recording
   statistics), reading x, y, u and writing y, u, t once;
5. after the adaptive-ρ update: t = y − u/ρ-factor for the images whose ρ changed
   (:func:`csc.backends.kernels.rescale_t`; u itself is divided lazily by the next y-step).

numba is optional: :func:`available` says whether the kernels can be used, and the
solver falls back to its torch loop otherwise (and on other devices). The kernels are
serial and release the GIL; this module runs them on ``torch.get_num_threads()``
threads by splitting rows or planes (so numba's own threading layer is never used, and
results do not depend on the number of threads). pyFFTW is optional too; without it
the FFTs are scipy's (slower, still faster than torch's on CPU).

Environment: ``CSC_FFT`` = ``fftw`` | ``scipy`` forces an FFT back end;
``CSC_FFTW_PLANNER`` = ``FFTW_ESTIMATE`` | ``FFTW_MEASURE`` | ``FFTW_PATIENT`` sets the
planner effort (default: MEASURE for maps of at least 2¹⁶ coefficients per image, which
is SPORCO's default, and ESTIMATE below, where planning would cost more than it saves).
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["available", "kernels", "FFTPair", "run_split", "unavailable_reason"]

#: names this module held before the back-end registry, now in csc.backends.registry
_MOVED_NAMES = ("select_backend", "use_fused")


def __getattr__(name: str):
    """The old paths ``csc.backends.fused.select_backend`` and ``use_fused``, deprecated: the choice
    of back end moved to :mod:`csc.backends.registry` (loaded by ``import csc``; read from
    ``sys.modules``, as the registry itself imports this module)."""
    if name in _MOVED_NAMES and "csc.backends.registry" in sys.modules:
        from csc._compat import warn_moved

        warn_moved(f"csc.backends.fused.{name}", f"csc.backends.registry.{name}")
        return getattr(sys.modules["csc.backends.registry"], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_lock = threading.Lock()
_kernels = None
_error: str | None = None


def kernels():
    """The compiled kernel module :mod:`csc.backends.kernels` (imports numba on first use)."""
    global _kernels, _error
    if _kernels is None and _error is None:
        with _lock:
            if _kernels is None and _error is None:
                try:
                    from csc.backends import kernels as kn

                    _kernels = kn
                except Exception as exc:  # ImportError, or numba failing to initialise
                    _error = f"{type(exc).__name__}: {exc}"
    if _kernels is None:
        raise RuntimeError(f"the fused CPU kernels need numba, which could not be imported ({_error})")
    return _kernels


def available() -> bool:
    """True when numba imports and the fused CPU path can run."""
    try:
        kernels()
        return True
    except RuntimeError:
        return False


def unavailable_reason() -> str | None:
    available()
    return _error


# ----------------------------------------------------------------------- threading
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csc-fused")
            _pool_size = workers
        return _pool


def run_split(fn, total: int, threads: int, *args) -> None:
    """Run ``fn(*args, lo, hi)`` over [0, total) split into ``threads`` contiguous ranges,
    in parallel (``fn`` must release the GIL and write disjoint outputs)."""
    if total <= 0:
        return
    parts = max(1, min(threads, total))
    if parts == 1:
        fn(*args, 0, total)
        return
    bounds = [total * j // parts for j in range(parts + 1)]
    pool = _get_pool(parts - 1)
    futures = [pool.submit(fn, *args, bounds[j], bounds[j + 1]) for j in range(1, parts)]
    fn(*args, bounds[0], bounds[1])
    for f in futures:
        f.result()


# ----------------------------------------------------------------------------- FFTs
_PLANNERS = ("FFTW_ESTIMATE", "FFTW_MEASURE", "FFTW_PATIENT", "FFTW_EXHAUSTIVE")
_plan_lock = threading.Lock()


def _fft_backend() -> str:
    want = os.environ.get("CSC_FFT", "").strip().lower()
    if want not in ("", "fftw", "scipy"):
        raise ValueError(f"CSC_FFT: expected 'fftw' or 'scipy', got {want!r}")
    if want == "scipy":
        return "scipy"
    try:
        import pyfftw  # noqa: F401

        return "fftw"
    except ImportError:
        if want == "fftw":
            raise RuntimeError("CSC_FFT=fftw but pyFFTW is not installed") from None
        return "scipy"


def _planner(per_image: int) -> str:
    eff = os.environ.get("CSC_FFTW_PLANNER", "").strip().upper()
    if eff:
        if eff not in _PLANNERS:
            raise ValueError(f"CSC_FFTW_PLANNER: expected one of {_PLANNERS}, got {eff!r}")
        return eff
    return "FFTW_MEASURE" if per_image >= 1 << 16 else "FFTW_ESTIMATE"


class FFTPair:
    """Forward and inverse real 2-D FFTs over the last two axes of (n, K, H, W) maps,
    executed image by image (so that the plans do not depend on the batch size).

    Construct it *before* writing data into the arrays: FFTW's planner may overwrite
    them. ``scale`` is the normalisation the caller must apply to the spectrum before
    :meth:`inverse` (1/(H·W) for FFTW, which does not normalise; 1 for scipy).
    ``forward`` may destroy its input (unless ``preserve_input``: then ``preserves_input``
    says whether it keeps it) and ``inverse`` its input spectrum. ``planner`` overrides the
    FFTW planner effort (default: :func:`_planner` by size and ``CSC_FFTW_PLANNER``).
    """

    def __init__(self, t: np.ndarray, xf: np.ndarray, x: np.ndarray, threads: int, *,
                 planner: str | None = None, preserve_input: bool = False):
        self.threads = max(1, int(threads))
        self.shape = t.shape[1:]
        H, W = self.shape[-2:]
        self.backend = _fft_backend()
        if self.backend == "fftw":
            import pyfftw

            align = pyfftw.simd_alignment
            aligned = all(a.ctypes.data % align == 0 and a.strides[0] % align == 0 for a in (t, xf, x))
            flags = [planner or _planner(int(np.prod(self.shape)))]
            if not aligned:
                flags.append("FFTW_UNALIGNED")
            fwd_flags = flags if preserve_input else flags + ["FFTW_DESTROY_INPUT"]
            with _plan_lock:  # FFTW's planner is not thread-safe
                self._fwd = pyfftw.FFTW(t[0], xf[0], axes=(-2, -1), direction="FFTW_FORWARD",
                                        flags=fwd_flags, threads=self.threads)
                self._inv = pyfftw.FFTW(xf[0], x[0], axes=(-2, -1), direction="FFTW_BACKWARD",
                                        flags=flags + ["FFTW_DESTROY_INPUT"], threads=self.threads)
            self.scale = 1.0 / (H * W)
        else:
            self.scale = 1.0
        # the forward transform keeps its input only with FFTW planned so (scipy may overwrite it)
        self.preserves_input = preserve_input and self.backend == "fftw"

    def forward(self, t: np.ndarray, xf: np.ndarray) -> None:
        """xf ← rfft2(t), image by image."""
        import scipy.fft

        self._each(self._fwd if self.backend == "fftw" else None, t, xf,
                   lambda a: scipy.fft.rfft2(a, workers=self.threads, overwrite_x=True))

    def inverse(self, xf: np.ndarray, x: np.ndarray) -> None:
        """x ← irfft2(xf)·(H·W)·scale, image by image."""
        import scipy.fft

        s = tuple(self.shape[-2:])
        self._each(self._inv if self.backend == "fftw" else None, xf, x,
                   lambda a: scipy.fft.irfft2(a, s=s, workers=self.threads, overwrite_x=True))

    @staticmethod
    def _each(plan, src: np.ndarray, dst: np.ndarray, fallback) -> None:
        """dst[i] ← the transform of src[i] for every image i: the FFTW ``plan``, else ``fallback``."""
        for i in range(src.shape[0]):
            if plan is not None:
                plan.update_arrays(src[i], dst[i])
                plan.execute()
            else:
                dst[i] = fallback(src[i])


def dl_kernels():
    """The learners' compiled kernels :mod:`csc.backends.dl_kernels` (numba; raises like
    :func:`kernels` when it cannot be imported)."""
    kernels()
    from csc.backends import dl_kernels as dk

    return dk
