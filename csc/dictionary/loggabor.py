r"""Log-Gabor kernels and dictionaries.

The kernels of §2.2 of the paper (Ladret, Casanova & Perrinet, "Kernel heterogeneity
improves sparseness of natural images representations"), as built by the authors'
LogGabor library.

A log-Gabor kernel of size :math:`n\times n` is built in the frequency domain on
the kernel's own grid and brought back to space by an inverse DFT.

Frequency grid (rows first, as in the authors' SLIP/LogGabor libraries)::

    f_x[k, l] = (k - n//2) / n        # varies along axis 0 (rows, downwards)
    f_y[k, l] = (l - n//2) / n        # varies along axis 1 (columns, rightwards)
    f = sqrt(f_x**2 + f_y**2)         # DC set to 1e-12
    phi = atan2(f_y, f_x)

so an orientation :math:`\theta_0` is measured from the vertical (row) axis
towards the horizontal (column) axis, and :math:`\theta_0 = 0` is a frequency
vector pointing down the rows (horizontal stripes).  The same convention is
used by :func:`csc.science.metrics.orientation_histogram`: the gradients of a kernel
with orientation :math:`\theta_0` point along :math:`\theta_0`.

Envelope, ``form="library"`` (default; the authors' library)

.. math::

    G(f,\phi) = \frac{1}{f}
        \exp\!\Big(-\frac{\ln^2(f/f_0)}{2 B_f^2}\Big)
        \exp\!\Big(\frac{\cos(\phi-\theta_0)}{B_\theta^2}\Big)
        e^{-2\pi i c (f_x + f_y)} M(f)

with :math:`f_0 = B_f = 0.4` (:math:`B_f` is the standard deviation of
:math:`\ln(f/f_0)`), :math:`c = n/2` centring the kernel (``n // 2``: for an
odd size the kernel stays on the central pixel), and the "retina"
mask :math:`M(f) = (1 - e^{(f-0.5)/0.035})[f<0.5]\,(1-e^{-f^2/(2(0.5/n)^2)})`.
The angular term is a single von Mises lobe (not :math:`\pi`-periodic): its
inverse DFT is complex and the phase :math:`\psi` selects the even (ψ = 0) or
odd (ψ = π/2) part.

Envelope, ``form="paper"`` (eq. 3 of the paper)

.. math::

    \exp\!\Big(-\frac{\ln^2(f/f_0)}{2\ln^2(1+\sigma_f/f_0)}\Big)
    \exp\!\Big(\frac{\cos(2(\phi-\theta_0))}{4\sigma_\theta^2}\Big)

replaces the radial and angular terms; the :math:`1/f` factor, the centring
ramp, the mask, the normalisation and the window are kept, so the two forms
differ only where the paper's text differs from the library.  The paper's
angular term is :math:`\pi`-periodic (two lobes), so its inverse DFT is real
and even and a phase could not make an odd kernel; the phase is therefore
applied to the analytic (one-sided) envelope
:math:`G\,(1 + \operatorname{sign}\cos(\phi-\theta_0))`, which gives
``cos(psi) * even + sin(psi) * odd`` exactly as in the library form.

Both angular terms behave as :math:`\exp(-(\phi-\theta_0)^2 / (2\sigma^2))` for
small angles, so ``b_theta`` is the standard deviation :math:`\sigma_\theta` of
the orientation envelope in both forms (the library calls it ``B_theta``).  The
presets quote it in degrees (5°, 10°, …, 30°; 12°).  The paper's *angular
bandwidth* :math:`B_\theta = \sigma_\theta\sqrt{2\ln 2}` (half width at half
height) is given by :func:`angular_bandwidth_degrees`.

Pipeline: normalise :math:`G` to unit RMS times :math:`\sqrt 2`, multiply by
:math:`e^{-i\psi}`, take the real part of ``ifft2(ifftshift(G))``, multiply by
the spatial window :math:`(((\cos\pi R + 1)/2)[R<1])^{1/3}` with :math:`R` the
radius on ``linspace(-1, 1, n)**2``, then normalise: ``"unit"`` (default)
divides by the ℓ2 norm; ``"authors"`` subtracts the median and divides by
``max|.|`` (the authors' kernels, ℓ2 norms about 1.5–3.9); ``None`` leaves the
kernel as built.

Presets (K = 144, order θ outer, then B_θ, then phase):

* ``"homogeneous"``: 72 θ = ``linspace(0, π, 72, endpoint=False)``,
  b_theta = π/15 (12°), phases {0, π/2};
* ``"heterogeneous"``: 12 θ = ``linspace(0, π, 12, endpoint=False)``,
  6 b_theta = ``linspace(0, π/6, 7)[1:]`` (5°…30°), phases {0, π/2}.

:func:`fit_kernel_params` estimates θ₀, b_theta and the phase of any kernel
by least squares against this model (amplitude and phase are solved in closed
form, θ₀ and b_theta by a coarse grid then batched local grid refinement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch

from csc.core.checks import check_bool, as_float_tensor, check_finite, check_ndim

__all__ = [
    "LogGaborParams",
    "KernelFit",
    "loggabor_kernel",
    "loggabor_kernels",
    "loggabor_dictionary",
    "angular_bandwidth_degrees",
    "fit_kernel_params",
    "PRESETS",
]

Form = Literal["library", "paper"]
Normalise = Literal["unit", "authors"] | None

PRESETS = ("homogeneous", "heterogeneous")
_FORMS = ("library", "paper")
_NORMALISE = ("unit", "authors", None)

# retina mask constants of the authors' SLIP library: df = 0.07, sigma = 0.5
_MASK_DF = 0.07
_MASK_SIGMA = 0.5
_WINDOW_EXPONENT = 3.0
_DC_FREQUENCY = 1e-12


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------


def _check_form(form: str) -> str:
    if form not in _FORMS:
        raise ValueError(f"form: expected one of {_FORMS}, got {form!r}")
    return form


def _check_normalise(normalise) -> str | None:
    if normalise not in _NORMALISE:
        raise ValueError(f"normalise: expected 'unit', 'authors' or None, got {normalise!r}")
    return normalise


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3:
        raise ValueError(f"size: expected an integer >= 3, got {size!r}")
    return int(size)


def _check_positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a number, got {value!r}") from exc
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite value > 0, got {value!r}")
    return v


def _as_param_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError(f"{name}: expected a scalar or a 1-D array, got shape {arr.shape}")
    return np.atleast_1d(arr)


# ----------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------


def angular_bandwidth_degrees(b_theta) -> np.ndarray | float:
    r"""Angular bandwidth :math:`B_\theta = \sigma_\theta\sqrt{2\ln 2}` in degrees.

    Parameters
    ----------
    b_theta : float or array_like
        The model's orientation parameter :math:`\sigma_\theta` in radians
        (``b_theta`` here, ``B_theta`` in the authors' library: the standard
        deviation of the orientation envelope).

    Returns
    -------
    float or numpy.ndarray
        The half width at half height of the orientation envelope in degrees,
        the paper's definition of the angular bandwidth (§2.2).  Note that the
        presets' quoted values (5°, …, 30°, 12°) are ``degrees(b_theta)``, not
        this quantity.
    """
    out = np.degrees(np.asarray(b_theta, dtype=np.float64) * math.sqrt(2.0 * math.log(2.0)))
    return float(out) if out.ndim == 0 else out


class _AngleViews:
    """Degree views of the ``theta`` and ``b_theta`` arrays (radians) of a parameter table."""

    theta: np.ndarray
    b_theta: np.ndarray

    @property
    def theta_degrees(self) -> np.ndarray:
        """θ₀ in degrees."""
        return np.degrees(self.theta)

    @property
    def b_theta_degrees(self) -> np.ndarray:
        """σ_θ in degrees (the value the presets quote: 5°, …, 30°; 12°)."""
        return np.degrees(self.b_theta)

    @property
    def bandwidth_degrees(self) -> np.ndarray:
        """The paper's angular bandwidth B_θ = σ_θ√(2 ln 2), in degrees."""
        return np.asarray(angular_bandwidth_degrees(self.b_theta))


@dataclass(frozen=True)
class LogGaborParams(_AngleViews):
    """Parameters of a log-Gabor dictionary, one entry per kernel.

    Attributes
    ----------
    theta : numpy.ndarray, shape (K,)
        Centre orientation θ₀ of each kernel in radians (see the module
        docstring for the axis convention).
    b_theta : numpy.ndarray, shape (K,)
        Orientation standard deviation σ_θ of each kernel in radians (the
        library's ``B_theta``); :attr:`bandwidth_degrees` gives the paper's
        B_θ = σ_θ√(2 ln 2).
    phase : numpy.ndarray, shape (K,)
        Phase ψ of each kernel in radians (0 even, π/2 odd).
    size : int
        Kernel side n (kernels are n × n).
    f0 : float
        Centre spatial frequency in cycles per pixel.
    b_f : float
        Radial bandwidth: std of ln(f/f₀) (``form="library"``) or σ_f of the
        paper's ln(1 + σ_f/f₀) (``form="paper"``).
    form : {"library", "paper"}
        Envelope form (module docstring).

    Notes
    -----
    The arrays are stored read-only.  Kernels are ordered as given; the
    presets and :meth:`from_grid` use θ outer, then b_theta, then phase.
    """

    theta: np.ndarray
    b_theta: np.ndarray
    phase: np.ndarray
    size: int = 12
    f0: float = 0.4
    b_f: float = 0.4
    form: Form = "library"

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("theta", "b_theta", "phase"):
            arr = _as_param_array(name, getattr(self, name))
            if not np.all(np.isfinite(arr)) and name != "b_theta":
                raise ValueError(f"{name}: expected finite values")
            arrays[name] = arr
        lengths = {name: a.shape[0] for name, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"theta, b_theta, phase: expected equal lengths, got {lengths}")
        if lengths["theta"] == 0:
            raise ValueError("theta: expected at least one kernel")
        if np.any(np.isnan(arrays["b_theta"])) or np.any(arrays["b_theta"] <= 0):
            raise ValueError("b_theta: expected values > 0 (np.inf gives an isotropic envelope)")
        for name, arr in arrays.items():
            arr = arr.copy()
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "size", _check_size(self.size))
        object.__setattr__(self, "f0", _check_positive("f0", self.f0))
        object.__setattr__(self, "b_f", _check_positive("b_f", self.b_f))
        _check_form(self.form)

    # -- constructors -------------------------------------------------------

    @classmethod
    def from_grid(
        cls,
        thetas: Sequence[float],
        b_thetas: Sequence[float],
        phases: Sequence[float] = (0.0, math.pi / 2),
        *,
        size: int = 12,
        f0: float = 0.4,
        b_f: float = 0.4,
        form: Form = "library",
    ) -> "LogGaborParams":
        """Every combination of the given values, θ outer, then b_theta, then phase."""
        t, b, p = (_as_param_array(n, v) for n, v in (("thetas", thetas), ("b_thetas", b_thetas), ("phases", phases)))
        tt, bb, pp = np.meshgrid(t, b, p, indexing="ij")
        return cls(tt.ravel(), bb.ravel(), pp.ravel(), size=size, f0=f0, b_f=b_f, form=form)

    @classmethod
    def preset(cls, name: str, *, size: int = 12, f0: float = 0.4, b_f: float = 0.4, form: Form = "library") -> "LogGaborParams":
        """The paper's dictionaries: ``"homogeneous"`` or ``"heterogeneous"`` (K = 144)."""
        if name == "homogeneous":
            thetas = np.linspace(0.0, np.pi, 72, endpoint=False)
            b_thetas = [np.pi / 15]
        elif name == "heterogeneous":
            thetas = np.linspace(0.0, np.pi, 12, endpoint=False)
            b_thetas = np.linspace(0.0, np.pi / 6, 7)[1:]
        else:
            raise ValueError(f"preset_or_params: expected one of {PRESETS} or a LogGaborParams, got {name!r}")
        return cls.from_grid(thetas, b_thetas, (0.0, np.pi / 2), size=size, f0=f0, b_f=b_f, form=form)

    # -- views ---------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.theta.shape[0])

    def as_array(self) -> np.ndarray:
        """The table as a (K, 3) array of columns (theta, b_theta, phase)."""
        return np.stack([self.theta, self.b_theta, self.phase], axis=1)


# ----------------------------------------------------------------------------
# kernel construction
# ----------------------------------------------------------------------------


def _frequency_grid(size: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    k = (torch.arange(size, dtype=torch.float64, device=device) - size // 2) / size
    fx = k[:, None].expand(size, size)
    fy = k[None, :].expand(size, size)
    f = torch.sqrt(fx**2 + fy**2)
    f[size // 2, size // 2] = _DC_FREQUENCY
    phi = torch.atan2(fy, fx)
    return fx, fy, f, phi


def _retina_mask(f: torch.Tensor, size: int) -> torch.Tensor:
    high = (1.0 - torch.exp((f - 0.5) / (0.5 * _MASK_DF))) * (f < 0.5)
    low = 1.0 - torch.exp(-0.5 * f**2 / (_MASK_SIGMA / size) ** 2)
    return high * low


def _spatial_window(size: int, device) -> torch.Tensor:
    x = torch.linspace(-1.0, 1.0, size, dtype=torch.float64, device=device)
    r = torch.sqrt(x[:, None] ** 2 + x[None, :] ** 2)
    base = (torch.cos(math.pi * r) + 1.0) / 2.0 * (r < 1.0)
    return base.clamp_min(0.0) ** (1.0 / _WINDOW_EXPONENT)


def _complex_kernels(
    theta: torch.Tensor,
    b_theta: torch.Tensor,
    size: int,
    f0: float,
    b_f: float,
    form: str,
) -> torch.Tensor:
    """Windowed complex spatial responses g, shape theta.shape + (n, n).

    The kernel of phase ψ is ``Re(exp(-i ψ) g) = cos ψ Re g + sin ψ Im g``.
    """
    device = theta.device
    fx, fy, f, phi = _frequency_grid(size, device)
    th = theta[..., None, None]
    bt = b_theta[..., None, None]
    log_ratio = torch.log(f / f0)
    if form == "library":
        radial = torch.exp(-0.5 * log_ratio**2 / b_f**2) / f
        # (cos - 1) instead of cos: same envelope up to a constant, no overflow
        angular = torch.exp((torch.cos(phi - th) - 1.0) / bt**2)
        env = radial * angular
    else:
        radial = torch.exp(-0.5 * log_ratio**2 / math.log1p(b_f / f0) ** 2) / f
        angular = torch.exp((torch.cos(2.0 * (phi - th)) - 1.0) / (4.0 * bt**2))
        one_sided = 1.0 + torch.sign(torch.cos(phi - th))
        env = radial * angular * one_sided
    env = env * _retina_mask(f, size)
    rms = torch.sqrt((env**2).mean(dim=(-2, -1), keepdim=True))
    env = env / rms * math.sqrt(2.0)
    c = float(size // 2)  # n/2 for the authors' even sizes; keeps odd kernels on the pixel grid
    ramp = torch.exp(torch.complex(torch.zeros_like(fx), -2.0 * math.pi * c * (fx + fy)))
    spectrum = env.to(torch.complex128) * ramp
    g = torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1)))
    return g * _spatial_window(size, device)


def _normalise(kernels: torch.Tensor, normalise: str | None) -> torch.Tensor:
    if normalise is None:
        return kernels
    if normalise == "unit":
        norms = torch.linalg.vector_norm(kernels, dim=(-2, -1), keepdim=True)
        return kernels / norms
    flat = kernels.flatten(-2)
    median = torch.quantile(flat, 0.5, dim=-1)[..., None, None]  # numpy's median
    centred = kernels - median
    return centred / centred.abs().amax(dim=(-2, -1), keepdim=True)


def loggabor_kernels(params: LogGaborParams, normalise: Normalise = "unit", dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Build every kernel of a parameter table.

    Parameters
    ----------
    params : LogGaborParams
        The table (K entries).
    normalise : {"unit", "authors", None}
        Final normalisation (module docstring).
    dtype : torch.dtype
        Output dtype (kernels are computed in float64 then cast).
    device : torch.device or str, optional
        Output device.

    Returns
    -------
    torch.Tensor, shape (K, size, size)
    """
    if not isinstance(params, LogGaborParams):
        raise TypeError(f"params: expected a LogGaborParams, got {type(params).__name__}")
    normalise = _check_normalise(normalise)
    theta, b_theta, phase = (
        torch.tensor(np.array(a), dtype=torch.float64, device=device) for a in (params.theta, params.b_theta, params.phase)
    )
    g = _complex_kernels(theta, b_theta, params.size, params.f0, params.b_f, params.form)
    ph = phase[:, None, None]
    kernels = torch.cos(ph) * g.real + torch.sin(ph) * g.imag
    return _normalise(kernels, normalise).to(dtype)


def loggabor_kernel(
    size: int = 12,
    theta: float = 0.0,
    b_theta: float = np.pi / 15,
    phase: float = 0.0,
    f0: float = 0.4,
    b_f: float = 0.4,
    form: Form = "library",
    normalise: Normalise = "unit",
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One log-Gabor kernel.

    Parameters
    ----------
    size : int
        Kernel side n.
    theta : float
        Centre orientation θ₀ in radians (module docstring for the convention).
    b_theta : float
        Orientation standard deviation σ_θ in radians (library ``B_theta``).
    phase : float
        Phase ψ in radians: 0 gives an even kernel, π/2 an odd one.
    f0 : float
        Centre frequency in cycles per pixel.
    b_f : float
        Radial bandwidth (std of ln(f/f₀) for ``"library"``, σ_f for ``"paper"``).
    form : {"library", "paper"}
        Envelope form; ``"library"`` (default) is the authors' code, ``"paper"``
        the paper's eq. 3.
    normalise : {"unit", "authors", None}
        ``"unit"``: unit ℓ2 norm; ``"authors"``: minus median, divided by
        max|·|; ``None``: as built.
    dtype, device
        Output dtype and device.

    Returns
    -------
    torch.Tensor, shape (size, size)
    """
    params = LogGaborParams(theta, b_theta, phase, size=size, f0=f0, b_f=b_f, form=_check_form(form))
    return loggabor_kernels(params, normalise=normalise, dtype=dtype, device=device)[0]


def loggabor_dictionary(
    preset_or_params: str | LogGaborParams = "heterogeneous",
    size: int | None = None,
    normalise: Normalise = "unit",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    *,
    form: Form | None = None,
    f0: float | None = None,
    b_f: float | None = None,
) -> tuple[torch.Tensor, LogGaborParams]:
    """A log-Gabor dictionary and its parameter table.

    Parameters
    ----------
    preset_or_params : {"heterogeneous", "homogeneous"} or LogGaborParams
        A paper preset (K = 144, θ outer, then b_theta, then phase) or an
        explicit table.
    size : int, optional
        Kernel side for a preset (default 12).  With a table, must agree with
        ``params.size`` if given.
    normalise : {"unit", "authors", None}
        Final normalisation; the default gives unit-ℓ2 kernels.
    dtype, device
        Output dtype (default float32) and device.
    form, f0, b_f : optional
        Envelope form and radial parameters for a preset (defaults
        ``"library"``, 0.4, 0.4).  With a table, must agree with it if given.

    Returns
    -------
    kernels : torch.Tensor, shape (K, size, size)
    params : LogGaborParams
        The parameter of each kernel, in the same order.
    """
    overrides = {"size": size, "form": form, "f0": f0, "b_f": b_f}
    if isinstance(preset_or_params, LogGaborParams):
        params = preset_or_params
        for name, value in overrides.items():
            if value is not None and value != getattr(params, name):
                raise ValueError(
                    f"{name}: given as {value!r} but the LogGaborParams table has {getattr(params, name)!r}; "
                    "leave it out or build the table with it"
                )
    elif isinstance(preset_or_params, str):
        params = LogGaborParams.preset(
            preset_or_params,
            size=12 if size is None else size,
            f0=0.4 if f0 is None else f0,
            b_f=0.4 if b_f is None else b_f,
            form=_check_form("library" if form is None else form),
        )
    else:
        raise TypeError(
            f"preset_or_params: expected a preset name or a LogGaborParams, got {type(preset_or_params).__name__}"
        )
    return loggabor_kernels(params, normalise=normalise, dtype=dtype, device=device), params


# ----------------------------------------------------------------------------
# fitting
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelFit(_AngleViews):
    """Log-Gabor parameters estimated by :func:`fit_kernel_params`.

    All arrays have the batch shape of the input (``()`` for one kernel).

    Attributes
    ----------
    theta : numpy.ndarray
        θ₀ in radians, in [0, π).  θ₀ + π describes the same kernel with phase
        −ψ in the library form, so orientations are reported modulo π.
    b_theta : numpy.ndarray
        σ_θ in radians (the model's ``b_theta``).
    phase : numpy.ndarray
        ψ in radians, in (−π, π], for the reported θ₀.
    residual : numpy.ndarray
        Relative residual ‖k − fit‖ / ‖k‖ (0 = perfect fit); large values mean
        the kernel is not log-Gabor-like and the parameters are not meaningful.
    """

    theta: np.ndarray
    b_theta: np.ndarray
    phase: np.ndarray
    residual: np.ndarray
    form: Form = "library"
    f0: float = 0.4
    b_f: float = 0.4



def _projection_scores(
    kernels: torch.Tensor, theta: torch.Tensor, b_theta: torch.Tensor, size: int, f0: float, b_f: float, form: str, offset: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy of each unit kernel captured by span{even, odd[, 1]} at each candidate.

    kernels: (N, P); theta, b_theta: (N, C) or (C,).  Returns (scores (N, C),
    coefficients (N, C, m)) with coefficients on the *unorthonormalised* basis.
    """
    g = _complex_kernels(theta, b_theta, size, f0, b_f, form)  # (..., C, n, n)
    basis = [g.real.flatten(-2), g.imag.flatten(-2)]
    if offset:
        basis.append(torch.ones_like(basis[0]))
    a = torch.stack(basis, dim=-1)  # (..., C, P, m)
    q, r = torch.linalg.qr(a)  # q: (..., C, P, m)
    if theta.ndim == 1:
        proj = torch.einsum("cpm,np->ncm", q, kernels)
        r = r.expand(kernels.shape[0], *r.shape)
    else:
        proj = torch.einsum("ncpm,np->ncm", q, kernels)
    scores = (proj**2).sum(-1)
    coef = torch.linalg.solve_triangular(r, proj[..., None], upper=True)[..., 0]
    return scores, coef


def fit_kernel_params(
    kernels,
    *,
    f0: float = 0.4,
    b_f: float = 0.4,
    form: Form = "library",
    b_theta_range: tuple[float, float] = (np.pi / 120, np.pi / 2),
    n_theta: int = 90,
    n_b_theta: int = 32,
    n_refine: int = 5,
    offset: bool = True,
) -> KernelFit:
    r"""Estimate θ₀, σ_θ (``b_theta``) and the phase of kernels by fitting the model.

    For each candidate (θ₀, σ_θ) the model kernels of phase 0 and π/2 (plus a
    constant if ``offset``) span the family ``a cos ψ · even + a sin ψ · odd
    (+ b)``, so amplitude, phase and offset are solved in closed form by
    least squares and the fit maximises the kernel energy captured by that
    span.  θ₀ ∈ [0, π) and σ_θ (log-spaced over ``b_theta_range``) are found on
    a coarse grid, then refined ``n_refine`` times on a 7 × 7 local grid whose
    step shrinks threefold each time, for all kernels at once.

    Parameters
    ----------
    kernels : torch.Tensor or numpy.ndarray, shape (n, n) or (..., n, n)
        Kernels of any normalisation.  The spatial size n is taken from them.
    f0, b_f, form
        The fixed radial parameters and the envelope form of the model.
    b_theta_range : (float, float)
        Search interval for σ_θ in radians.
    n_theta, n_b_theta : int
        Coarse grid sizes.
    n_refine : int
        Number of local refinement rounds.
    offset : bool
        Allow a constant offset (absorbs the authors' median subtraction and
        any DC of learned kernels).

    Returns
    -------
    KernelFit
        Arrays with the input's batch shape.
    """
    offset = check_bool("offset", offset)
    form = _check_form(form)
    f0 = _check_positive("f0", f0)
    b_f = _check_positive("b_f", b_f)
    lo, hi = (_check_positive("b_theta_range", v) for v in b_theta_range)
    if not lo < hi:
        raise ValueError(f"b_theta_range: expected (low, high) with low < high, got {b_theta_range!r}")
    flat, batch_shape, size = _unit_kernels(kernels)
    model = dict(size=size, f0=f0, b_f=b_f, form=form, offset=offset)
    theta, logb = _coarse_fit(flat, lo, hi, n_theta, n_b_theta, model)
    theta, logb = _refine_fit(flat, theta, logb, lo, hi, n_theta, n_b_theta, n_refine, model)
    scores, coef = _projection_scores(flat, theta[:, None], torch.exp(logb)[:, None], size, f0, b_f, form, offset)
    scores, coef = scores[:, 0], coef[:, 0]
    phase = torch.atan2(coef[:, 1], coef[:, 0])
    residual = torch.sqrt((1.0 - scores).clamp_min(0.0))

    def out(t: torch.Tensor) -> np.ndarray:
        return t.reshape(batch_shape).cpu().numpy()

    return KernelFit(
        theta=out(theta), b_theta=out(torch.exp(logb)), phase=out(phase), residual=out(residual), form=form, f0=f0, b_f=b_f
    )


def _unit_kernels(kernels) -> tuple[torch.Tensor, torch.Size, int]:
    """Checked kernels (..., n, n) as unit-norm float64 rows (N, n·n), their batch shape and n."""
    k = as_float_tensor("kernels", kernels)
    check_ndim("kernels", k, range(2, 8), "(..., n, n)")
    check_finite("kernels", k)
    if k.shape[-1] != k.shape[-2] or k.shape[-1] < 3:
        raise ValueError(f"kernels: expected square kernels of side >= 3, got shape {tuple(k.shape)}")
    size = k.shape[-1]
    flat = k.reshape(-1, size * size).to(torch.float64)
    norms = torch.linalg.vector_norm(flat, dim=-1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("kernels: expected nonzero kernels, found an all-zero kernel")
    return flat / norms, k.shape[:-2], size


def _coarse_fit(flat: torch.Tensor, lo: float, hi: float, n_theta: int, n_b_theta: int,
                model: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Best (θ₀, ln σ_θ) of each kernel on the coarse n_theta × n_b_theta grid."""
    device = flat.device
    t_grid = torch.linspace(0.0, math.pi, n_theta + 1, dtype=torch.float64, device=device)[:-1]
    logb_grid = torch.linspace(math.log(lo), math.log(hi), n_b_theta, dtype=torch.float64, device=device)
    tt, bb = torch.meshgrid(t_grid, logb_grid, indexing="ij")
    tt, bb = tt.reshape(-1), bb.reshape(-1)
    scores, _ = _projection_scores(flat, tt, torch.exp(bb), **model)
    best = scores.argmax(dim=1)
    return tt[best], bb[best]


def _refine_fit(flat: torch.Tensor, theta: torch.Tensor, logb: torch.Tensor, lo: float, hi: float, n_theta: int,
                n_b_theta: int, n_refine: int, model: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_refine`` rounds of a 7 × 7 local search around (θ₀, ln σ_θ), the step shrinking threefold each time."""
    device = flat.device
    n_k = flat.shape[0]
    d_theta = math.pi / n_theta
    d_logb = (math.log(hi) - math.log(lo)) / max(n_b_theta - 1, 1)
    steps = torch.arange(-3, 4, dtype=torch.float64, device=device) / 3.0
    st, sb = torch.meshgrid(steps, steps, indexing="ij")
    st, sb = st.reshape(-1), sb.reshape(-1)
    for _ in range(n_refine):
        cand_t = torch.remainder(theta[:, None] + st[None, :] * d_theta, math.pi)
        cand_b = (logb[:, None] + sb[None, :] * d_logb).clamp(math.log(lo), math.log(hi))
        scores, _ = _projection_scores(flat, cand_t, torch.exp(cand_b), **model)
        best = scores.argmax(dim=1)
        idx = torch.arange(n_k, device=device)
        theta = cand_t[idx, best]
        logb = cand_b[idx, best]
        d_theta /= 3.0
        d_logb /= 3.0
    return theta, logb
