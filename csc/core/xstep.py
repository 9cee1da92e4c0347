r"""x-step solvers of the ADMM core: the linear solve, one object per problem structure.

For CBPDN with a single-channel dictionary the x-step solves, at every frequency,

.. math::  (\hat D^H \hat D + \rho I)\,\hat x = \hat D^H \hat s + \rho\,\hat v ,

with :math:`\hat D` a 1×K row. By the Sherman–Morrison formula the solution is
:math:`\hat x = \hat v + \hat D^H (\hat s - \hat D \hat v) / (\rho + \hat D \hat D^H)`
(SPORCO ``linalg.solvedbi_sm``; this rearrangement never forms :math:`\hat D^H \hat s`).

An x-step object owns the dictionary's DFT in the forms the back ends need and offers:

- :meth:`SingleChannelXStep.solve_` — the torch solve, in place (any device);
- :meth:`SingleChannelXStep.accuracy` — the relative residual of the linear system for a
  computed solution (the accuracy probe, as SCICO's sub-problem solvers carry).

For a multi-channel dictionary (kernels (K, C, kh, kw), images of C channels, one
coefficient map per kernel shared by the channels: SPORCO's ``Cd = C`` case),
:math:`\hat D` is a C×K matrix at every frequency and :class:`MultiChannelXStep` solves the
same system through a C×C one (Woodbury's identity),
:math:`\hat x = \hat v + \hat D^H (\rho I + \hat D \hat D^H)^{-1}(\hat s - \hat D \hat v)`
(SPORCO ``linalg.solvemdbi_ism`` reaches the same solution by iterated Sherman–Morrison).

An x-step is a pure torch description: the back ends that run it faster (the numba kernels
of :mod:`csc.backends.numba_xstep`, the compiled ones of :mod:`csc.backends.compiled`) keep
what they derive from its dictionary in its ``backend_cache``, which :meth:`set_dft` empties
(and reusable buffers in ``backend_buffers``). A new problem structure is a new x-step class
with the same methods, run by the same :class:`csc.core.admm.ADMMLoop` (on the torch loop
until a back end writes a kernel for it). :class:`DiagonalXStep` adds a quadratic penalty
(μ/2) x̂ᴴ diag(P) x̂, a diagonal term in the system (the elastic net, P = 1; the gradient
regularisation, P_k = w_k Σ_i |Ĝ_i|²).
"""

from __future__ import annotations

import numpy as np
import torch

from csc.core import ops

__all__ = ["XStep", "ChannelwiseXStep", "DiagonalXStep", "MultiChannelDiagonalXStep", "MultiChannelXStep",
           "ProductXStep", "SingleChannelXStep", "diagonal_xstep_for", "gradient_gram", "xstep_for"]


class XStep:
    """What every x-step of one dictionary shares: construction from its DFT or its kernels, and
    the caches that :meth:`set_dft` (the learners' dictionary updates) empties."""

    #: whether the problem has a quadratic penalty (:meth:`DiagonalXStep.penalty`)
    has_penalty = False

    def __init__(self, Df: torch.Tensor):
        self.set_dft(Df)

    @classmethod
    def from_kernels(cls, D: torch.Tensor, shape):
        """From kernels (K, kh, kw), or (K, C, kh, kw) for the multi-channel x-step, for images of
        ``shape`` (H, W)."""
        return cls(ops.kernel_dft(D, tuple(shape)))

    def set_dft(self, Df: torch.Tensor) -> None:
        """Replace the dictionary by its DFT; what back ends derived from the old one is dropped."""
        self.Df = Df
        self.backend_cache: dict = {}  # what back ends derive from this dictionary
        self.backend_buffers: dict = getattr(self, "backend_buffers", {})  # kept across dictionaries

    def adjoint(self, zf: torch.Tensor) -> torch.Tensor:
        """D̂ᴴ ẑ: image DFTs (n, C, H, Wr) back to the maps (n, K, H, Wr), Σ_c conj(D̂_kc) ẑ_c for a
        multi-channel dictionary (K, C, H, Wr), conj(D̂_k) ẑ for a single-channel one (C = 1)."""
        if self.Df.ndim == 4:
            return torch.einsum("kchw,nchw->nkhw", self.Df.conj(), zf)
        return self.Df.conj() * zf


class SingleChannelXStep(XStep):
    """Sherman–Morrison x-step for a single-channel dictionary (module docstring).

    Parameters
    ----------
    Df : (K, H, W//2 + 1) complex
        DFT of the kernels zero-padded to H×W (:func:`csc.core.ops.kernel_dft`).
    """

    def set_dft(self, Df: torch.Tensor) -> None:
        """Replace the dictionary (the learners call this after each dictionary step)."""
        super().set_dft(Df)
        self._Dfc: torch.Tensor | None = None
        self._gram: torch.Tensor | None = None

    @property
    def Dfc(self) -> torch.Tensor:
        """conj(D̂), materialised (the torch solve's multiplier); made on first use only, so
        the fused back end, which never needs it, does not copy D̂ at each dictionary update."""
        if self._Dfc is None:
            self._Dfc = self.Df.conj().resolve_conj()
        return self._Dfc

    @property
    def gram(self) -> torch.Tensor:
        """Σ_k |D̂_k|² per frequency, (H, Wr)."""
        if self._gram is None:
            self._gram = ops.gram_diagonal(self.Df)
        return self._gram

    def solve_(self, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """vf (n, K, H, Wr) ← x̂ for v̂ = vf, image DFTs ``Sf`` (n, 1, H, Wr) and ρ (n, 1, 1, 1)."""
        c = (Sf - torch.einsum("khw,nkhw->nhw", self.Df, vf).unsqueeze(1)).div_(rho + self.gram)
        return vf.addcmul_(self.Dfc, c)

    def synthesis(self, xf: torch.Tensor) -> torch.Tensor:
        """Σ_k D̂_k x̂_k, (n, H, Wr)."""
        return ops.synthesis_dft(self.Df, xf)

    def adjoint(self, zf: torch.Tensor) -> torch.Tensor:
        """conj(D̂_k) ẑ for image DFTs (n, 1, H, Wr), with the cached conj(D̂)."""
        return self.Dfc * zf

    channels = 1
    #: DFT rows per image row of the fused kernels' fidelity (1: one problem per image)
    row_factor = 1

    @staticmethod
    def signal_dft(S: torch.Tensor) -> torch.Tensor:
        """The image DFTs as :meth:`solve_` takes them: (n, H, W) → (n, 1, H, Wr)."""
        return torch.fft.rfft2(S).unsqueeze(1)

    def accuracy(self, xf: torch.Tensor, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Relative residual ‖(D̂ᴴD̂ + ρI)x̂ − (D̂ᴴŜ + ρv̂)‖ / ‖D̂ᴴŜ + ρv̂‖ per image (n,)."""
        b = ops.adjoint_dft(self.Df, Sf.reshape(Sf.shape[0], *Sf.shape[-2:])) + rho * vf
        Ax = self.Dfc * self.synthesis(xf).unsqueeze(1) + rho * xf
        err = (Ax - b).abs().square().sum((1, 2, 3)).sqrt()
        return err / b.abs().square().sum((1, 2, 3)).sqrt().clamp_min(torch.finfo(err.dtype).tiny)


class MultiChannelXStep(XStep):
    """The x-step of a multi-channel dictionary (module docstring): Woodbury's identity with
    the C×C channel Gram matrix per frequency.

    Parameters
    ----------
    Df : (K, C, H, W//2 + 1) complex
        DFT of the kernels (K, C, kh, kw) zero-padded to H×W.
    """

    def set_dft(self, Df: torch.Tensor) -> None:
        """Replace the dictionary."""
        super().set_dft(Df)
        self.channels = int(Df.shape[1])
        self.row_factor = 1
        self.has_penalty = False
        self._G: torch.Tensor | None = None

    @property
    def channel_gram(self) -> torch.Tensor:
        """G = D̂D̂ᴴ per frequency, (H, Wr, C, C): G_cd = Σ_k D̂_ck conj(D̂_dk)."""
        if self._G is None:
            self._G = torch.einsum("kchw,kdhw->hwcd", self.Df, self.Df.conj())
        return self._G

    @staticmethod
    def signal_dft(S: torch.Tensor) -> torch.Tensor:
        """Image DFTs (n, C, H, W) → (n, C, H, Wr)."""
        return torch.fft.rfft2(S)

    def solve_(self, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """vf (n, K, H, Wr) ← x̂ for v̂ = vf, image DFTs ``Sf`` (n, C, H, Wr), ρ (n, 1, 1, 1)."""
        r = Sf - torch.einsum("kchw,nkhw->nchw", self.Df, vf)
        C = self.channels
        eye = torch.eye(C, dtype=self.Df.dtype, device=self.Df.device)
        A = self.channel_gram.unsqueeze(0) + rho.reshape(-1, 1, 1, 1, 1).to(self.Df.dtype) * eye
        c = torch.linalg.solve(A, r.permute(0, 2, 3, 1).unsqueeze(-1))[..., 0].permute(0, 3, 1, 2)
        return vf.add_(torch.einsum("kchw,nchw->nkhw", self.Df.conj(), c))

    def synthesis(self, xf: torch.Tensor) -> torch.Tensor:
        """Σ_k D̂_ck x̂_k per channel, (n, C, H, Wr)."""
        return torch.einsum("kchw,nkhw->nchw", self.Df, xf)

    def accuracy(self, xf: torch.Tensor, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Relative residual ‖(D̂ᴴD̂ + ρI)x̂ − (D̂ᴴŜ + ρv̂)‖ / ‖D̂ᴴŜ + ρv̂‖ per image (n,)."""
        adj = lambda z: torch.einsum("kchw,nchw->nkhw", self.Df.conj(), z)  # noqa: E731
        b = adj(Sf) + rho * vf
        err = (adj(self.synthesis(xf)) + rho * xf - b).abs().square().sum((1, 2, 3)).sqrt()
        return err / b.abs().square().sum((1, 2, 3)).sqrt().clamp_min(torch.finfo(err.dtype).tiny)


class ChannelwiseXStep:
    """The single-channel x-step in each of C channels: maps (n, C·K, H, Wr) of C channels ×
    K kernels, images (n, C, H, W), one ρ per image shared by its channels (joint sparsity,
    :class:`csc.problems.joint.ConvBPDNJoint`)."""

    def __init__(self, Df: torch.Tensor, channels: int):
        self.inner = SingleChannelXStep(Df)
        self.channels = self.row_factor = int(channels)
        self.has_penalty = False

    @classmethod
    def from_kernels(cls, D: torch.Tensor, shape, channels: int) -> "ChannelwiseXStep":
        return cls(ops.kernel_dft(D, tuple(shape)), channels)

    @property
    def Df(self) -> torch.Tensor:
        return self.inner.Df

    def set_dft(self, Df: torch.Tensor) -> None:
        """Replace the dictionary (the learners call this after each dictionary step)."""
        self.inner.set_dft(Df)

    def _split(self, vf: torch.Tensor) -> torch.Tensor:
        n, CK = vf.shape[:2]
        return vf.view(n * self.channels, CK // self.channels, *vf.shape[2:])

    @staticmethod
    def signal_dft(S: torch.Tensor) -> torch.Tensor:
        """Image DFTs (n, C, H, W) → (n, C, H, Wr)."""
        return torch.fft.rfft2(S)

    def _rho(self, rho):
        return rho.repeat_interleave(self.channels, 0)

    def solve_(self, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """vf (n, C·K, H, Wr) ← x̂ channel by channel; ``Sf`` (n, C, H, Wr); ρ (n, 1, 1, 1)."""
        self.inner.solve_(self._split(vf), Sf.reshape(-1, 1, *Sf.shape[-2:]), self._rho(rho))
        return vf

    def synthesis(self, xf: torch.Tensor) -> torch.Tensor:
        """Σ_k D̂_k x̂_{c,k} per channel, (n, C, H, Wr)."""
        return self.inner.synthesis(self._split(xf)).view(xf.shape[0], self.channels, *xf.shape[2:])

    def accuracy(self, xf, vf, Sf, rho) -> torch.Tensor:
        """The relative residual of the linear system per image (n,): the largest over its channels."""
        acc = self.inner.accuracy(self._split(xf), self._split(vf), Sf.reshape(-1, 1, *Sf.shape[-2:]), self._rho(rho))
        return acc.view(-1, self.channels).amax(1)


class ProductXStep(XStep):
    r"""The x-step of a product of a convolutional and a standard dictionary (SPORCO
    ``admm.pdcsc.ConvProdDictBPDN``, Garcia-Cardona & Wohlberg 2018): images of C channels
    s_c = Σ_j B_cj Σ_k d_k * x_jk, B a (C, J) matrix, maps x (J·K, H, W) pseudo-channel-major.
    At every frequency x̂ is K×J and the system is
    :math:`\hat D^H \hat D\,\hat x\,B^T B + \rho\,\hat x = \hat D^H \hat S B + \rho\,\hat v`.
    With BᵀB = QΓQᵀ (``numpy.linalg.eigh``, |Γ| as SPORCO takes it) and x̃ = x̂Q, column j is
    :math:`(\gamma_j \hat D^H \hat D + \rho I)\tilde x_j = \hat D^H t_j + \rho\tilde v_j`,
    t_j = Σ_c (BQ)_cj ŝ_c, solved by Sherman–Morrison as
    :math:`\tilde x_j = \tilde v_j + \hat D^H (t_j - \gamma_j \hat D \tilde v_j)/(\rho + \gamma_j \hat D \hat D^H)`
    (SPORCO ``linalg.solvedbi_sm`` with √γ_j D̂); x̂ = x̃Qᵀ. Synthesis: Σ_j B_cj Σ_k D̂_k x̂_jk.

    With ``over_rho`` (SPORCO ``ConvProdDictL1L1Grd``: the two-block split Ax − y = c,
    A = (DBᵀ; I), and a gradient penalty (μ/2)x̂ᴴdiag(P)x̂, P per kernel as
    :class:`DiagonalXStep`'s), column j solves
    :math:`(\gamma_j \hat D^H \hat D + \operatorname{diag}(\delta))\tilde x_j = \hat D^H t_j + \tilde v_j`,
    δ_k = 1 + (μ/ρ)P_k (SPORCO ``solvedbd_sm``): ẑ = ṽ_j/δ,
    :math:`c = (t_j - \gamma_j \hat D\hat z)/(1 + \gamma_j \sum_k |\hat D_k|^2/\delta_k)`,
    x̃_j = ẑ + D̂ᴴc/δ.

    Parameters
    ----------
    Df : (K, H, Wr) complex, the convolutional kernels' DFT.
    B : (C, J) real tensor, the standard dictionary.
    P, mu, over_rho : the two-block system's penalty (None: the plain system above).
    """

    row_factor = 1

    def __init__(self, Df: torch.Tensor, B: torch.Tensor, P: torch.Tensor | None = None, mu: float = 0.0,
                 over_rho: bool = False):
        Bn = B.detach().cpu().to(torch.float64).numpy()
        gamma, Q = np.linalg.eigh(Bn.T.dot(Bn))  # SPORCO setdict: Gamma, Q = eigh(BᵀB); Gamma = |Gamma|
        real = Df.real.dtype
        self.B = torch.from_numpy(Bn).to(dtype=real, device=Df.device)
        self.Q = torch.from_numpy(Q).to(dtype=real, device=Df.device)
        self.BQ = torch.from_numpy(Bn.dot(Q)).to(dtype=real, device=Df.device)
        self.gamma = torch.from_numpy(np.abs(gamma)).to(dtype=real, device=Df.device).reshape(1, -1, 1, 1)
        self.channels, self.pseudo = int(Bn.shape[0]), int(Bn.shape[1])
        self.has_penalty = P is not None
        if P is not None:
            _set_penalty(self, Df, P, mu, over_rho)
        elif over_rho:
            raise ValueError("over_rho: the two-block system takes the penalty's weights P")
        self.over_rho = bool(over_rho)
        super().__init__(Df)

    @classmethod
    def from_kernels(cls, D: torch.Tensor, shape, B: torch.Tensor, *penalty) -> "ProductXStep":
        return cls(ops.kernel_dft(D, tuple(shape)), B, *penalty)

    def set_dft(self, Df: torch.Tensor) -> None:
        super().set_dft(Df)
        self.gram = ops.gram_diagonal(Df)  # Σ_k |D̂_k|² (H, Wr)
        self.sq = Df.real.square() + Df.imag.square()
        self.Dfc = Df.conj().resolve_conj()

    @staticmethod
    def signal_dft(S: torch.Tensor) -> torch.Tensor:
        """Image DFTs (n, C, H, W) → (n, C, H, Wr)."""
        return torch.fft.rfft2(S)

    def _split(self, vf: torch.Tensor) -> torch.Tensor:
        return vf.view(vf.shape[0], self.pseudo, -1, *vf.shape[-2:])

    def _delta(self, rho: torch.Tensor) -> torch.Tensor:
        """δ (n, 1, 1 or K, H, Wr) of the two-block system: (μ/ρ)P + 1."""
        return ((self.mu / rho) * self.P + 1).unsqueeze(1)   # SPORCO: (mu / rho) * GHGf + 1.0

    def solve_(self, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """vf (n, J·K, H, Wr) ← x̂ for v̂ = vf, image DFTs ``Sf`` (n, C, H, Wr), ρ (n, 1, 1, 1)."""
        Q, v = self.Q.to(vf.dtype), self._split(vf)
        vt = torch.einsum("ij,nikhw->njkhw", Q, v)
        t = torch.einsum("cj,nchw->njhw", self.BQ.to(vf.dtype), Sf)
        Dfc = self.Dfc.unsqueeze(0).unsqueeze(0)
        if self.over_rho:
            d = self._delta(rho)
            z = vt.div_(d)
            gam = torch.div(self.sq, d).sum(2)                              # Σ_k |D̂_k|²/δ_k
            c = (t - self.gamma * torch.einsum("khw,njkhw->njhw", self.Df, z)) / (1 + self.gamma * gam)
            xt = z.add_(Dfc * c.unsqueeze(2) / d)
        else:
            c = (t - self.gamma * torch.einsum("khw,njkhw->njhw", self.Df, vt)) / (rho + self.gamma * self.gram)
            xt = vt.add_(Dfc * c.unsqueeze(2))
        v.copy_(torch.einsum("ij,njkhw->nikhw", Q, xt))
        return vf

    def synthesis(self, xf: torch.Tensor) -> torch.Tensor:
        """Σ_j B_cj Σ_k D̂_k x̂_jk per channel, (n, C, H, Wr)."""
        return torch.einsum("cj,njhw->nchw", self.B.to(xf.dtype), torch.einsum("khw,njkhw->njhw", self.Df,
                                                                                self._split(xf)))

    def adjoint(self, zf: torch.Tensor) -> torch.Tensor:
        """(DBᵀ)ᴴ: conj(D̂_k) Σ_c B_cj ẑ_c for image DFTs zf (n, C, H, Wr) → (n, J·K, H, Wr)."""
        zb = torch.einsum("cj,nchw->njhw", self.B.to(zf.dtype), zf)
        return (self.Dfc.unsqueeze(0).unsqueeze(0) * zb.unsqueeze(2)).flatten(1, 2)

    def penalty(self, vf: torch.Tensor, width: int) -> torch.Tensor:
        """½ Σ_jk x̂_jkᴴ diag(P_k) x̂_jk / (H·W) per image (n,) for maps' DFTs ``vf``, by Parseval."""
        v = self._split(vf)
        sq = (v.real.square() + v.imag.square()).mul_(self.P)
        return ops.parseval_sum(sq, width).sum((1, 2)) / 2.0

    def accuracy(self, xf: torch.Tensor, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Relative residual ‖(DBᵀ)ᴴ(DBᵀ)x̂ + δx̂ − b̂‖ / ‖b̂‖ per image (n,): b̂ = (DBᵀ)ᴴŜ + ρv̂ and
        δ = ρ, or b̂ = (DBᵀ)ᴴŜ + v̂ and δ = (μ/ρ)P + 1 with ``over_rho``."""
        if self.over_rho:
            r, d = 1.0, self._delta(rho).expand(-1, self.pseudo, -1, -1, -1).flatten(1, 2)
        else:
            r, d = rho, rho
        b = self.adjoint(Sf) + r * vf
        err = (self.adjoint(self.synthesis(xf)) + d * xf - b).abs().square().sum((1, 2, 3)).sqrt()
        return err / b.abs().square().sum((1, 2, 3)).sqrt().clamp_min(torch.finfo(err.dtype).tiny)


def xstep_for(D: torch.Tensor, shape):
    """The x-step of kernels ``D``: (K, kh, kw) single-channel, (K, C, kh, kw) multi-channel."""
    return (MultiChannelXStep if D.ndim == 4 else SingleChannelXStep).from_kernels(D, shape)


def gradient_gram(shape, dtype=torch.float64) -> torch.Tensor:
    r"""Σ_i |Ĝ_i|² (H, W//2 + 1) for the circular first differences G_i along each spatial
    axis (SPORCO ``signal.gradient_filters``: the DFTs of the filters [1, −1])."""
    H, W = shape
    g = np.zeros((2, H, W))
    g[0, 0, 0], g[0, 1, 0] = 1.0, -1.0
    g[1, 0, 0], g[1, 0, 1] = 1.0, -1.0
    Gf = np.fft.rfft2(g, axes=(1, 2))
    return torch.from_numpy(np.sum(np.conj(Gf) * Gf, axis=0).real).to(dtype)


def _set_penalty(xs, Df: torch.Tensor, P: torch.Tensor, mu: float, over_rho: bool) -> None:
    """The diagonal x-steps' P, μ, ``over_rho`` and μP (in float64 first, as SPORCO forms
    ``mu * GHGf`` before adding ρ), on the kernels' device and real dtype."""
    xs.P = P.to(dtype=Df.real.dtype, device=Df.device)
    xs.mu, xs.over_rho = float(mu), bool(over_rho)
    xs.muP = (xs.mu * P.to(torch.float64)).to(dtype=xs.P.dtype, device=Df.device)


class DiagonalXStep(SingleChannelXStep):
    r"""Sherman–Morrison x-step with a diagonal term (SPORCO ``linalg.solvedbd_sm``).

    For a problem with the penalty (μ/2) Σ_k x̂_kᴴ diag(P_k) x̂_k, P ≥ 0 per kernel and
    frequency, the x-step solves at every frequency

    .. math::  (\hat D^H \hat D + \operatorname{diag}(\delta))\,\hat x = \hat D^H \hat s + \rho\,\hat v,
               \qquad \delta_k = \rho + \mu P_k ,

    as :math:`\hat z = \rho\hat v/\delta`,
    :math:`c = (\hat s - \hat D\hat z) / (1 + \sum_k |\hat D_k|^2/\delta_k)`,
    :math:`\hat x = \hat z + \overline{\hat D}\,c/\delta` (the residual
    :math:`\hat D\hat x - \hat s` is −c). P = 1 gives the elastic net's
    (D̂ᴴD̂ + (ρ + μ)I); μ = 0 gives :class:`SingleChannelXStep`'s system.

    With ``over_rho`` the system is the one of the two-block split Ax − y = c with
    A = (D; I) (SPORCO ``ConvL1L1Grd.xstep``): δ_k = 1 + (μ/ρ)P_k and the right-hand side
    D̂ᴴŝ + v̂ (ẑ = v̂/δ), for ŝ and v̂ the DFTs of the two blocks of y − u + c.

    Parameters
    ----------
    Df : (K, H, Wr) complex kernel DFTs.
    P : (1 or K, H, Wr) real, the penalty's weights.
    mu : float ≥ 0, the penalty's factor.
    over_rho : bool, the two-block split's system (above).
    """

    has_penalty = True

    def __init__(self, Df: torch.Tensor, P: torch.Tensor, mu: float, over_rho: bool = False):
        _set_penalty(self, Df, P, mu, over_rho)
        super().__init__(Df)

    def set_dft(self, Df: torch.Tensor) -> None:
        super().set_dft(Df)
        self._sq = None

    @property
    def sq(self) -> torch.Tensor:
        """|D̂_k|² (K, H, Wr)."""
        if self._sq is None:
            self._sq = self.Df.real.square() + self.Df.imag.square()
        return self._sq

    def solve_(self, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """vf (n, K, H, Wr) ← x̂ for v̂ = vf, image DFTs ``Sf`` (n, 1, H, Wr), ρ (n, 1, 1, 1)."""
        if self.over_rho:
            d = (self.mu / rho) * self.P + 1                 # SPORCO: (mu / rho) * GHGf + 1.0
            z = vf.div_(d)
        else:
            d = rho + self.muP                               # (n, 1 or K, H, Wr)
            z = vf.mul_(rho).div_(d)
        gam = torch.div(self.sq, d).sum(1, keepdim=True)     # Σ_k |D̂_k|²/δ_k
        c = (Sf - torch.einsum("khw,nkhw->nhw", self.Df, z).unsqueeze(1)).div_(gam.add_(1))
        return z.add_(torch.mul(self.Dfc, c).div_(d))

    def penalty(self, vf: torch.Tensor, width: int) -> torch.Tensor:
        """½ Σ_k x̂_kᴴ diag(P_k) x̂_k / (H·W) per image (n,) for maps' DFTs ``vf``, by Parseval."""
        sq = (vf.real.square() + vf.imag.square()).mul_(self.P)
        return ops.parseval_sum(sq, width).sum(1) / 2.0

    def accuracy(self, xf: torch.Tensor, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Relative residual ‖(D̂ᴴD̂ + diag(δ))x̂ − b̂‖ / ‖b̂‖ per image (n,), b̂ = D̂ᴴŜ + ρv̂
        (D̂ᴴŜ + v̂ with ``over_rho``)."""
        r, d = (1.0, (self.mu / rho) * self.P + 1) if self.over_rho else (rho, rho + self.muP)
        b = ops.adjoint_dft(self.Df, Sf.reshape(Sf.shape[0], *Sf.shape[-2:])) + r * vf
        Ax = self.Dfc * self.synthesis(xf).unsqueeze(1) + d * xf
        err = (Ax - b).abs().square().sum((1, 2, 3)).sqrt()
        return err / b.abs().square().sum((1, 2, 3)).sqrt().clamp_min(torch.finfo(err.dtype).tiny)


class MultiChannelDiagonalXStep(XStep):
    r""":class:`DiagonalXStep`'s system for a multi-channel dictionary (D̂ a C×K matrix per
    frequency; SPORCO ``linalg.solvemdbi_ism`` with a diagonal ρ, as ``ConvElasticNet``,
    ``ConvBPDNGradReg`` and ``ConvL1L1Grd`` call it when ``Cd > 1``):

    .. math::  (\hat D^H \hat D + \operatorname{diag}(\delta))\,\hat x = \hat D^H \hat s + r\,\hat v ,

    δ_k = ρ + μP_k and r = ρ (or δ_k = 1 + (μ/ρ)P_k and r = 1 with ``over_rho``), solved by
    Woodbury's identity through the C×C system
    :math:`(I + \hat D \Delta^{-1} \hat D^H)\,c = \hat s - \hat D \hat z`, ẑ = r v̂/δ,
    :math:`\hat x = \hat z + \Delta^{-1} \hat D^H c`.

    Parameters as :class:`DiagonalXStep`, with ``Df`` (K, C, H, Wr). The fused back end has no
    kernel for it: the registry runs it on the torch loop and says so in ``result.backend``.
    """

    has_penalty = True
    row_factor = 1

    def __init__(self, Df: torch.Tensor, P: torch.Tensor, mu: float, over_rho: bool = False):
        _set_penalty(self, Df, P, mu, over_rho)
        super().__init__(Df)

    def set_dft(self, Df: torch.Tensor) -> None:
        super().set_dft(Df)
        self.channels = int(Df.shape[1])

    signal_dft = staticmethod(MultiChannelXStep.signal_dft)
    synthesis = MultiChannelXStep.synthesis
    penalty = DiagonalXStep.penalty

    def _delta(self, rho: torch.Tensor) -> torch.Tensor:
        """δ (n, 1 or K, H, Wr) for ρ (n, 1, 1, 1)."""
        return (self.mu / rho) * self.P + 1 if self.over_rho else rho + self.muP

    def solve_(self, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """vf (n, K, H, Wr) ← x̂ for v̂ = vf, image DFTs ``Sf`` (n, C, H, Wr), ρ (n, 1, 1, 1)."""
        d = self._delta(rho)
        z = vf.div_(d) if self.over_rho else vf.mul_(rho).div_(d)
        r = Sf - torch.einsum("kchw,nkhw->nchw", self.Df, z)
        Dd = self.Df.unsqueeze(0) / d.unsqueeze(2)                       # (n, K, C, H, Wr): D̂/δ
        A = torch.einsum("nkchw,kdhw->nhwcd", Dd, self.Df.conj())
        A += torch.eye(self.channels, dtype=A.dtype, device=A.device)
        c = torch.linalg.solve(A, r.permute(0, 2, 3, 1).unsqueeze(-1))[..., 0].permute(0, 3, 1, 2)
        return z.add_(torch.einsum("nkchw,nchw->nkhw", Dd.conj(), c))

    def accuracy(self, xf: torch.Tensor, vf: torch.Tensor, Sf: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Relative residual ‖(D̂ᴴD̂ + diag(δ))x̂ − b̂‖ / ‖b̂‖ per image (n,)."""
        adj = lambda z: torch.einsum("kchw,nchw->nkhw", self.Df.conj(), z)  # noqa: E731
        b = adj(Sf) + (1.0 if self.over_rho else rho) * vf
        err = (adj(self.synthesis(xf)) + self._delta(rho) * xf - b).abs().square().sum((1, 2, 3)).sqrt()
        return err / b.abs().square().sum((1, 2, 3)).sqrt().clamp_min(torch.finfo(err.dtype).tiny)


def diagonal_xstep_for(D: torch.Tensor, shape, P: torch.Tensor, mu: float, over_rho: bool = False):
    """The diagonal x-step of kernels ``D`` ((K, kh, kw) or (K, C, kh, kw)) for images of ``shape``:
    :class:`DiagonalXStep` or :class:`MultiChannelDiagonalXStep`."""
    cls = MultiChannelDiagonalXStep if D.ndim == 4 else DiagonalXStep
    return cls(ops.kernel_dft(D, tuple(shape)), P, mu, over_rho)
