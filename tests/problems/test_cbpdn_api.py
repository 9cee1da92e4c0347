"""API, validation and mathematical-property tests of csc.ConvBPDN (everything but SPORCO
numeric parity, which lives in test_cbpdn_parity.py).

Every reference value here is computed independently of csc: convolutions with numpy
FFTs (kernels zero-padded at the top-left, circular) or explicit loops, objectives and
optimality conditions in float64 from the returned codes. The problems are small
(24×28 images, K = 8 kernels of 5×5) so the file runs in seconds.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import csc
from csc.core.options import SPORCO_CBPDN_NAMES

from ..backends_params import (DEVICE_BACKENDS, FREEZING_BACKENDS, NUMBA_AVAILABLE, NUMBA_MISSING, compiled_param,
                               numba_param)
from ..conftest import needs_sporco

K, KH, KW, H, W = 8, 5, 5, 24, 28
LMBDA = 0.1


# ----------------------------------------------------------------------------- data
def make_dictionary(K: int = K, kh: int = KH, kw: int = KW, seed: int = 1234) -> np.ndarray:
    """(K, kh, kw) Gaussian kernels of unit ℓ2 norm, float64."""
    rng = np.random.RandomState(seed)
    D = rng.randn(K, kh, kw)
    return D / np.sqrt((D ** 2).sum((1, 2), keepdims=True))


def make_images(B: int, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """(B, h, w) high-passed 1/f noise (natural-image-like spectra), contrasts differing per
    image so that the images of a batch converge at different iterations."""
    rng = np.random.RandomState(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.hypot(fy, fx)
    amp = np.where(f > 0.08, 1.0 / np.maximum(f, 1e-12), 0.0)
    out = []
    for b in range(B):
        im = np.real(np.fft.ifft2(np.fft.fft2(rng.randn(h, w)) * amp))
        out.append(im / im.std() * 0.1 * (1 + 0.5 * b))
    return np.stack(out)


@pytest.fixture(scope="module")
def D() -> torch.Tensor:
    return torch.from_numpy(make_dictionary())


@pytest.fixture(scope="module")
def S() -> torch.Tensor:
    return torch.from_numpy(make_images(5))


# ------------------------------------------------------- independent numpy reference
def np_kernel_dft(Dk: np.ndarray, h: int, w: int) -> np.ndarray:
    P = np.zeros((Dk.shape[0], h, w))
    P[:, : Dk.shape[1], : Dk.shape[2]] = Dk  # top-left origin, not centred
    return np.fft.fft2(P)


def np_synthesis(Dk: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Σ_k d_k * x_k (circular) for X (..., K, h, w) → (..., h, w)."""
    h, w = X.shape[-2:]
    Df = np_kernel_dft(Dk, h, w)
    return np.real(np.fft.ifft2((Df * np.fft.fft2(X)).sum(-3)))


def np_adjoint(Dk: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Dᵀr (circular correlation) for R (..., h, w) → (..., K, h, w)."""
    h, w = R.shape[-2:]
    Df = np_kernel_dft(Dk, h, w)
    return np.real(np.fft.ifft2(np.conj(Df) * np.fft.fft2(R)[..., None, :, :]))


def loop_synthesis(Dk: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Σ_k d_k * x_k by explicit loops over every tap (tiny problems only); X (K, h, w)."""
    Kk, kh, kw = Dk.shape
    h, w = X.shape[-2:]
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            acc = 0.0
            for k in range(Kk):
                for a in range(kh):
                    for b in range(kw):
                        acc += Dk[k, a, b] * X[k, (i - a) % h, (j - b) % w]
            out[i, j] = acc
    return out


def np_objective(Dk: np.ndarray, X: np.ndarray, S: np.ndarray, lmbda: float, w=1.0):
    """(objective, data fidelity, ℓ1) of every image, X (B, K, h, w), S (B, h, w)."""
    fid = 0.5 * ((np_synthesis(Dk, X) - S) ** 2).sum((-2, -1))
    l1 = np.abs(np.asarray(w) * X).sum((-3, -2, -1))
    return fid + lmbda * l1, fid, l1


def rel(a, b) -> float:
    """‖a − b‖ / ‖b‖ (0 when both vanish)."""
    a = torch.as_tensor(a).double().cpu()
    b = torch.as_tensor(b).double().cpu()
    nb = float(b.norm())
    d = float((a - b).norm())
    return d / nb if nb > 0 else d


def solve(Dt, images, lmbda=LMBDA, **opts):
    return csc.ConvBPDN(Dt, lmbda, csc.CBPDNOptions(**opts)).solve(images)


# =============================================================================== shapes
def test_single_image_shapes(D, S):
    res = solve(D, S[0], max_iter=200)
    assert isinstance(res, csc.CBPDNResult)
    for name in ("codes", "x", "u"):
        assert getattr(res, name).shape == (1, K, H, W), name
        assert getattr(res, name).dtype == torch.float64, name
    assert res.rho.shape == (1,)
    assert res.iterations.shape == (1,) and res.iterations.dtype == torch.int64
    assert res.dictionary.shape == (K, KH, KW)
    assert len(res.stats) == 1
    n = int(res.iterations[0])
    assert 0 < n < 200, "the problem should converge before max_iter"
    assert len(res.stats[0]) == n
    np.testing.assert_array_equal(res.stats[0].iteration, np.arange(n))
    assert res.reconstruct().shape == (1, H, W)


def test_batch_shapes(D, S):
    res = solve(D, S, max_iter=200)
    B = S.shape[0]
    for name in ("codes", "x", "u"):
        assert getattr(res, name).shape == (B, K, H, W), name
    assert res.rho.shape == (B,)
    assert res.iterations.shape == (B,)
    assert len(res.stats) == B
    for b in range(B):
        assert len(res.stats[b]) == int(res.iterations[b])
    assert res.reconstruct().shape == (B, H, W)


def test_numpy_inputs_give_tensors(D, S):
    res = solve(D.numpy(), S.numpy(), max_iter=30)
    ref = solve(D, S, max_iter=30)
    assert isinstance(res.codes, torch.Tensor)
    assert torch.equal(res.codes, ref.codes)


def test_multichannel_each_channel_solved_alone(D):
    B, C = 2, 3
    imgs = torch.from_numpy(make_images(B * C, seed=3).reshape(B, C, H, W))
    solver = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(max_iter=300))
    res = solver.solve(imgs)
    for name in ("codes", "x", "u"):
        assert getattr(res, name).shape == (B, C, K, H, W), name
    assert res.rho.shape == (B, C)
    assert res.iterations.shape == (B, C)
    assert len(res.stats) == B * C
    assert res.reconstruct().shape == (B, C, H, W)
    assert len(set(res.iterations.flatten().tolist())) > 1, "channels should stop at different iterations"
    for b in range(B):
        for c in range(C):
            alone = solver.solve(imgs[b, c])
            assert int(res.iterations[b, c]) == int(alone.iterations[0])
            for name in ("codes", "x", "u"):
                err = rel(getattr(res, name)[b, c], getattr(alone, name)[0])
                assert err <= 1e-12, f"{name}[{b},{c}] relative error {err:.2e}"
            assert float(res.rho[b, c]) == pytest.approx(float(alone.rho[0]), rel=1e-12)
            # statistics in flattened (B, C) order
            np.testing.assert_allclose(res.stats[b * C + c].objective, alone.stats[0].objective, rtol=1e-12)


# ========================================================================= reconstruct
def test_reconstruct_matches_numpy_fft(D, S):
    res = solve(D, S[:3], max_iter=100)
    ref = np_synthesis(D.numpy(), res.codes.numpy())
    assert rel(res.reconstruct(), ref) <= 1e-12
    # any codes can be passed, e.g. the dense x
    assert rel(res.reconstruct(res.x), np_synthesis(D.numpy(), res.x.numpy())) <= 1e-12


def test_reconstruct_matches_explicit_loops():
    """Tiny problem, explicit circular convolution with top-left kernel origin."""
    h, w = 6, 7
    Dk = make_dictionary(K=2, kh=3, kw=2, seed=5)
    img = make_images(1, h, w, seed=9)[0]
    res = solve(torch.from_numpy(Dk), torch.from_numpy(img), max_iter=5)
    X = np.random.RandomState(2).randn(1, 2, h, w)
    got = res.reconstruct(torch.from_numpy(X))
    assert got.shape == (1, h, w)
    np.testing.assert_allclose(got[0].numpy(), loop_synthesis(Dk, X[0]), rtol=0, atol=1e-13)
    # the origin is the top-left tap: a unit impulse at (0, 0) reproduces kernel 0 there...
    X = np.zeros((1, 2, h, w))
    X[0, 0, 0, 0] = 1.0
    expected = np.zeros((h, w))
    expected[:3, :2] = Dk[0]
    np.testing.assert_allclose(res.reconstruct(torch.from_numpy(X))[0].numpy(), expected, atol=1e-14)
    # ...and an impulse at the last pixel wraps around the borders (circular convolution)
    X = np.zeros((1, 2, h, w))
    X[0, 1, h - 1, w - 1] = 1.0
    np.testing.assert_allclose(res.reconstruct(torch.from_numpy(X))[0].numpy(), loop_synthesis(Dk, X[0]),
                               atol=1e-14)
    assert abs(float(res.reconstruct(torch.from_numpy(X))[0, 0, 0]) - Dk[1, 1, 1]) < 1e-14


# ========================================================================= sync_interval
# The host reads the convergence flags every sync_interval iterations on the back ends that
# freeze converged images on the device (the torch loop and the compiled back end); the
# numba back end checks every iteration whatever sync_interval says, so these tests name
# their back end: on the default one both sides would compute the same thing.
@pytest.mark.parametrize("backend", FREEZING_BACKENDS)
@pytest.mark.parametrize("max_iter,interval,extra", [
    (500, 7, {}), (60, 7, {}), (500, 3, {}), (60, 1000, {}),
    (500, 7, {"rsdl_ratio": 1.0}),  # ρ changes at every iteration, also after convergence
], ids=["all-converge", "some-hit-max-iter", "interval-3", "interval>max_iter", "rho-always-updated"])
def test_sync_interval_same_results(D, S, backend, max_iter, interval, extra):
    """The device-side freezing path (sync_interval > 1) gives the results of checking
    convergence every iteration, for a batch whose images stop at different iterations."""
    every = solve(D, S, max_iter=max_iter, record_stats=False, sync_interval=1, backend=backend, **extra)
    frozen = solve(D, S, max_iter=max_iter, record_stats=False, sync_interval=interval, backend=backend, **extra)
    its = every.iterations.tolist()
    assert len(set(its)) > 1, "images must stop at different iterations"
    if max_iter == 60:
        assert min(its) < 60 and max(its) == 60, its
    else:
        assert max(its) < max_iter, its
    # some image converged between two host reads, so it was frozen on the device for a while
    assert any(it < max_iter and it % interval != 0 for it in its), its
    assert torch.equal(frozen.iterations, every.iterations)
    for name in ("codes", "x", "u"):
        for b in range(S.shape[0]):
            err = rel(getattr(frozen, name)[b], getattr(every, name)[b])
            assert err <= 1e-13, f"{name}[{b}] relative error {err:.2e}"
    np.testing.assert_allclose(frozen.rho.numpy(), every.rho.numpy(), rtol=1e-13)
    assert torch.equal(frozen.codes != 0, every.codes != 0)
    assert frozen.stats is None and every.stats is None
    # ρ and u of a frozen image stay consistent: ρu is still λ·sign(y) on the support
    rho_u = frozen.rho.reshape(-1, 1, 1, 1) * frozen.u
    nz = frozen.codes != 0
    assert float((rho_u[nz] - LMBDA * torch.sign(frozen.codes[nz])).abs().max()) <= 1e-12 * LMBDA


def test_record_stats_off_same_codes(D, S):
    on = solve(D, S, max_iter=300)
    off = solve(D, S, max_iter=300, record_stats=False)
    assert on.stats is not None and off.stats is None
    assert torch.equal(on.iterations, off.iterations)
    for name in ("codes", "x", "u", "rho"):
        assert torch.equal(getattr(on, name), getattr(off, name)), name


@pytest.mark.parametrize("backend", FREEZING_BACKENDS)
def test_sync_interval_same_results_when_recording(D, S, backend):
    """With statistics on, the rows buffered on the device between host reads (sync_interval
    9) are the rows of reading every iteration, and the images frozen between reads get
    the results and no rows of the iterations they did not run."""
    a = solve(D, S, max_iter=300, sync_interval=9, backend=backend)
    b = solve(D, S, max_iter=300, sync_interval=1, backend=backend)
    its = b.iterations.tolist()
    assert any(it < 300 and it % 9 != 0 for it in its), its
    assert torch.equal(a.iterations, b.iterations)
    for name in ("codes", "x", "u", "rho"):
        assert rel(getattr(a, name), getattr(b, name)) <= 1e-13, name
    for sa, sb, it in zip(a.stats, b.stats, its):
        assert len(sa) == len(sb) == it
        for f in ("objective", "data_fidelity", "l1", "primal_residual", "dual_residual", "rho"):
            np.testing.assert_allclose(getattr(sa, f), getattr(sb, f), rtol=1e-13, atol=0, err_msg=f)


@pytest.mark.parametrize("backend,interval", [
    numba_param("numba", 1, id="numba-1"), pytest.param("torch", 1, id="torch-1"), pytest.param("torch", 4, id="torch-4"),
    compiled_param("cpu", "compiled", 4, id="compiled-4"),
])
def test_inputs_not_modified(D, S, backend, interval):
    """The solver works in place on its own buffers, never on the caller's tensors."""
    imgs, Dk = S[:3].clone(), D.clone()
    y0 = torch.from_numpy(np.random.RandomState(1).randn(3, K, H, W) * 0.01)
    u0 = torch.from_numpy(np.random.RandomState(2).randn(3, K, H, W) * 0.01)
    w = torch.from_numpy(np.random.RandomState(3).uniform(0.5, 1.5, size=(3, K, H, W)))
    copies = [t.clone() for t in (imgs, Dk, y0, u0, w)]
    res = csc.ConvBPDN(Dk, LMBDA, csc.CBPDNOptions(max_iter=30, l1_weight=w, sync_interval=interval,
                                                   record_stats=False, backend=backend)).solve(imgs, y0=y0, u0=u0)
    assert not torch.equal(res.codes, y0) and not torch.equal(res.u, u0)  # the solve did change its own y and u
    for t, c in zip((imgs, Dk, y0, u0, w), copies):
        assert torch.equal(t, c)


@pytest.mark.parametrize("backend,interval", [
    numba_param("numba", 1, id="numba-1"), pytest.param("torch", 1, id="torch-1"), pytest.param("torch", 4, id="torch-4"),
    compiled_param("cpu", "compiled", 4, id="compiled-4"),
])
def test_results_do_not_share_storage(D, S, backend, interval):
    """A result is not changed by a later solve, and its arrays are independent."""
    solver = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(max_iter=100, record_stats=False, sync_interval=interval,
                                                     backend=backend))
    first = solver.solve(S)
    saved = {name: getattr(first, name).clone() for name in ("codes", "x", "u", "rho", "iterations")}
    second = solver.solve(S.flip(0).contiguous())
    for name, v in saved.items():
        assert torch.equal(getattr(first, name), v), name
    for b in range(S.shape[0]):
        assert rel(second.codes[S.shape[0] - 1 - b], first.codes[b]) <= 1e-13
    second_codes = second.codes.clone()
    first.codes.zero_()
    assert torch.equal(first.x, saved["x"]) and torch.equal(first.u, saved["u"])
    assert torch.equal(second.codes, second_codes)


# ================================================================================ encode
def test_encode_equals_solve(D, S):
    opts = dict(max_iter=150, rel_stop_tol=2e-3, rho_period=2)
    codes = csc.encode(S, D, LMBDA, **opts)
    ref = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(**opts)).solve(S).codes
    assert torch.equal(codes, ref)
    assert csc.encode(S[0], D, LMBDA, max_iter=10).shape == (1, K, H, W)


def test_encode_rejects_unknown_options(D, S):
    with pytest.raises(TypeError, match="max_iters") as exc:
        csc.encode(S, D, LMBDA, max_iters=10, MaxMainIter=5)
    assert "MaxMainIter" in str(exc.value)


# =============================================================================== options
SPORCO_MAPPING_CASES = [
    ({"MaxMainIter": 17}, "max_iter", 17),
    ({"AbsStopTol": 1e-5}, "abs_stop_tol", 1e-5),
    ({"RelStopTol": 2e-4}, "rel_stop_tol", 2e-4),
    ({"RelaxParam": 1.3}, "relax", 1.3),
    ({"rho": 4.5}, "rho", 4.5),
    ({"AutoRho": {"Enabled": False}}, "auto_rho", False),
    ({"AutoRho": {"Period": 10}}, "rho_period", 10),
    ({"AutoRho": {"Scaling": 2.0}}, "rho_scaling", 2.0),
    ({"AutoRho": {"RsdlRatio": 1.05}}, "rsdl_ratio", 1.05),
    ({"AutoRho": {"RsdlTarget": 3.0}}, "rsdl_target", 3.0),
    ({"AutoRho": {"AutoScaling": False}}, "auto_scaling", False),
    ({"AutoRho": {"StdResiduals": True}}, "std_residuals", True),
    ({"L1Weight": 0.5}, "l1_weight", 0.5),
    ({"NonNegCoef": True}, "nonneg", True),
    ({"NoBndryCross": True}, "no_boundary_cross", True),
    ({"AuxVarObj": True}, "objective_on_y", True),
    ({"FastSolve": True}, "record_stats", False),
    ({"FastSolve": False}, "record_stats", True),
    ({"DataType": np.float32}, "dtype", torch.float32),
    ({"DataType": "float64"}, "dtype", torch.float64),
    ({"DataType": np.dtype("float32")}, "dtype", torch.float32),
]


@pytest.mark.parametrize("opt,field,value", SPORCO_MAPPING_CASES,
                         ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(SPORCO_MAPPING_CASES)])
def test_from_sporco_maps_each_name(opt, field, value):
    o = csc.CBPDNOptions.from_sporco(opt)
    assert getattr(o, field) == value
    # and nothing else changes
    default = csc.CBPDNOptions()
    for f in dataclasses.fields(csc.CBPDNOptions):
        if f.name != field:
            assert getattr(o, f.name) == getattr(default, f.name), f.name


def test_from_sporco_all_autorho_keys_at_once():
    o = csc.CBPDNOptions.from_sporco({"AutoRho": {
        "Enabled": False, "Period": 3, "Scaling": 5.0, "RsdlRatio": 2.0, "RsdlTarget": 1.5,
        "AutoScaling": False, "StdResiduals": True}})
    assert (o.auto_rho, o.rho_period, o.rho_scaling, o.rsdl_ratio, o.rsdl_target, o.auto_scaling,
            o.std_residuals) == (False, 3, 5.0, 2.0, 1.5, False, True)


def test_from_sporco_l1_weight_layout():
    rng = np.random.RandomState(0)
    w_sp = rng.rand(H, W, K)  # SPORCO: spatial axes first, kernel axis last
    o = csc.CBPDNOptions.from_sporco({"L1Weight": w_sp})
    np.testing.assert_array_equal(np.asarray(o.l1_weight), np.moveaxis(w_sp, -1, 0))
    w5 = rng.rand(1, 1, 1, 1, K)
    o = csc.CBPDNOptions.from_sporco({"L1Weight": w5})
    assert np.asarray(o.l1_weight).shape == (K, 1, 1)
    np.testing.assert_array_equal(np.asarray(o.l1_weight).ravel(), w5.ravel())


def test_from_sporco_ignores_display_and_equivalent_paths():
    o = csc.CBPDNOptions.from_sporco({"Verbose": True, "StatusHeader": False, "IterTimer": "solve",
                                      "HighMemSolve": True, "ReturnX": True})
    assert o == csc.CBPDNOptions(verbose=True)  # Verbose prints csc's iteration table; the others change nothing


@pytest.mark.parametrize("opt,name", [
    ({"MaxIter": 10}, "MaxIter"),
    ({"maxmainiter": 10}, "maxmainiter"),
    ({"AutoRho": {"Enabled": True, "Bogus": 1}}, "Bogus"),
    ({"AutoRho": {"period": 2}}, "period"),
    ({"AutoRho": 3}, "AutoRho"),
])
def test_from_sporco_rejects_unknown_names(opt, name):
    with pytest.raises(ValueError, match=name):
        csc.CBPDNOptions.from_sporco(opt)


@pytest.mark.parametrize("name,value", [
    ("Y0", np.zeros((H, W, 1, 1, K))),
    ("U0", np.zeros((H, W, 1, 1, K))),
    ("Callback", lambda solver: False),
])
def test_from_sporco_rejects_y0_u0_callback_when_set(name, value):
    with pytest.raises(ValueError, match=name):
        csc.CBPDNOptions.from_sporco({name: value})
    assert csc.CBPDNOptions.from_sporco({name: None}) == csc.CBPDNOptions()


def test_from_sporco_overrides_win():
    o = csc.CBPDNOptions.from_sporco({"MaxMainIter": 5, "FastSolve": True}, max_iter=9, device="cpu")
    assert o.max_iter == 9 and o.record_stats is False and o.device == "cpu"


def test_name_table_covers_every_field():
    assert set(SPORCO_CBPDN_NAMES) == {f.name for f in dataclasses.fields(csc.CBPDNOptions)}


@needs_sporco
def test_name_table_names_are_sporco_options():
    from sporco.admm import cbpdn as sp_cbpdn

    defaults = sp_cbpdn.ConvBPDN.Options.defaults
    for field, name in SPORCO_CBPDN_NAMES.items():
        if name.startswith("("):
            continue
        name = name.split(" ")[0]
        if name.startswith("AutoRho."):
            assert name.split(".", 1)[1] in defaults["AutoRho"], field
        else:
            assert name in defaults, field


@needs_sporco
def test_defaults_equal_sporco_defaults():
    """Every CBPDNOptions default equals the SPORCO ConvBPDN.Options() default it maps to."""
    from sporco.admm import cbpdn as sp_cbpdn

    sp = sp_cbpdn.ConvBPDN.Options()
    ours = csc.CBPDNOptions()
    for field, name in SPORCO_CBPDN_NAMES.items():
        if name.startswith("("):
            continue
        if field == "record_stats":
            assert ours.record_stats == (not sp["FastSolve"])
            continue
        key = name.split(" ")[0]
        theirs = sp["AutoRho", key.split(".", 1)[1]] if key.startswith("AutoRho.") else sp[key]
        assert getattr(ours, field) == theirs, f"{field} = {getattr(ours, field)!r}, SPORCO {key} = {theirs!r}"
    # and from_sporco of SPORCO's own (non-default-free) values gives the same options
    explicit = {k: sp[k] for k in ("MaxMainIter", "AbsStopTol", "RelStopTol", "RelaxParam", "rho", "L1Weight",
                                   "NonNegCoef", "NoBndryCross", "AuxVarObj", "FastSolve", "DataType")}
    explicit["AutoRho"] = dict(sp["AutoRho"])
    assert csc.CBPDNOptions.from_sporco(explicit) == ours


@needs_sporco
def test_from_sporco_accepts_a_full_sporco_options_object():
    from sporco.admm import cbpdn as sp_cbpdn

    assert csc.CBPDNOptions.from_sporco(sp_cbpdn.ConvBPDN.Options()) == csc.CBPDNOptions()
    o = csc.CBPDNOptions.from_sporco(sp_cbpdn.ConvBPDN.Options({"AuxVarObj": True, "MaxMainIter": 7}))
    assert o.objective_on_y is True and o.max_iter == 7


@pytest.mark.parametrize("field,value", [
    ("relax", 0.0), ("relax", -0.5), ("relax", 2.0), ("relax", 2.5), ("relax", float("nan")),
    ("abs_stop_tol", -1e-3), ("abs_stop_tol", float("inf")), ("rel_stop_tol", -1e-3),
    ("rel_stop_tol", float("nan")),
    ("rho_period", 0), ("rho_period", -1), ("rho_period", 1.5),
    ("max_iter", -1), ("max_iter", 2.5),
    ("rho", 0.0), ("rho", -1.0), ("rho", float("inf")),
    ("rsdl_target", 0.0), ("rsdl_ratio", -1.0), ("rho_scaling", -2.0),
    ("sync_interval", 0), ("sync_interval", 2.0),
    ("dtype", "int32"), ("dtype", np.float16),
])
def test_invalid_option_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        csc.CBPDNOptions(**{field: value})


def test_valid_boundary_option_values():
    csc.CBPDNOptions(relax=1e-3, max_iter=0, abs_stop_tol=0.0, rel_stop_tol=0.0, rho_period=1, sync_interval=1)
    csc.CBPDNOptions(relax=1.999)
    o = csc.CBPDNOptions(max_iter=np.int64(5), dtype="float32")
    assert o.dtype == torch.float32
    assert o.replace(max_iter=3).max_iter == 3 and o.max_iter == 5
    with pytest.raises(ValueError, match="relax"):
        o.replace(relax=2.0)


def test_rho_scaling_zero_is_rejected():
    with pytest.raises(ValueError, match="rho_scaling"):
        csc.CBPDNOptions(rho_scaling=0.0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.int64])
def test_torch_dtype_option_validated_like_numpy_dtype(dtype):
    with pytest.raises(ValueError, match="dtype"):
        csc.CBPDNOptions(dtype=dtype)


# =============================================================================== layouts
def _arr(lib, shape, seed=0):
    a = np.random.RandomState(seed).randn(*shape)
    return torch.from_numpy(a) if lib == "torch" else a


def _eq(a, b) -> bool:
    return tuple(a.shape) == tuple(b.shape) and np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_layout_dictionary(lib):
    sp = _arr(lib, (3, 4, 6))  # (kh, kw, K)
    ours = csc.from_sporco_layout(sp, "dictionary")
    assert tuple(ours.shape) == (6, 3, 4)
    assert type(ours) is type(sp)
    for k in range(6):
        assert _eq(ours[k], sp[:, :, k])
    assert _eq(csc.to_sporco_layout(ours, "dictionary"), sp)
    sp4 = _arr(lib, (3, 4, 2, 6))  # (kh, kw, C, K)
    ours4 = csc.from_sporco_layout(sp4, "dictionary")
    assert tuple(ours4.shape) == (6, 2, 3, 4)
    assert _eq(ours4[5, 1], sp4[:, :, 1, 5])
    assert _eq(csc.to_sporco_layout(ours4, "dictionary"), sp4)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_layout_images(lib):
    s2 = _arr(lib, (5, 7))
    assert _eq(csc.from_sporco_layout(s2, "images"), s2)
    assert _eq(csc.to_sporco_layout(s2, "images"), s2)
    s3 = _arr(lib, (5, 7, 3))  # (H, W, B)
    b = csc.from_sporco_layout(s3, "images")
    assert tuple(b.shape) == (3, 5, 7) and _eq(b[2], s3[:, :, 2])
    assert _eq(csc.to_sporco_layout(b, "images"), s3)
    m = csc.from_sporco_layout(s3, "images", multichannel=True)  # (H, W, C)
    assert tuple(m.shape) == (1, 3, 5, 7) and _eq(m[0, 1], s3[:, :, 1])
    back = csc.to_sporco_layout(m, "images")  # (H, W, C, 1)
    assert tuple(back.shape) == (5, 7, 3, 1) and _eq(back[..., 0], s3)
    s4 = _arr(lib, (5, 7, 3, 2))  # (H, W, C, B)
    o4 = csc.from_sporco_layout(s4, "images")
    assert tuple(o4.shape) == (2, 3, 5, 7) and _eq(o4[1, 2], s4[:, :, 2, 1])
    assert _eq(csc.to_sporco_layout(o4, "images"), s4)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_layout_codes(lib):
    x1 = _arr(lib, (5, 7, 1, 2, 4))  # (H, W, C=1, B, K)
    o1 = csc.from_sporco_layout(x1, "codes")
    assert tuple(o1.shape) == (2, 4, 5, 7)
    assert _eq(o1[1, 3], x1[:, :, 0, 1, 3])
    assert _eq(csc.to_sporco_layout(o1, "codes"), x1)
    x3 = _arr(lib, (5, 7, 3, 2, 4))  # C = 3
    o3 = csc.from_sporco_layout(x3, "codes")
    assert tuple(o3.shape) == (2, 3, 4, 5, 7)
    assert _eq(o3[1, 2, 3], x3[:, :, 2, 1, 3])
    assert _eq(csc.to_sporco_layout(o3, "codes"), x3)
    # csc → SPORCO → csc
    c = _arr(lib, (2, 4, 5, 7), seed=1)
    assert _eq(csc.from_sporco_layout(csc.to_sporco_layout(c, "codes"), "codes"), c)


@pytest.mark.parametrize("func", [csc.from_sporco_layout, csc.to_sporco_layout])
def test_layout_errors(func):
    with pytest.raises(ValueError, match="kind"):
        func(np.zeros((3, 3, 2)), "kernels")
    with pytest.raises(ValueError, match="array"):
        func(np.zeros((3, 3)), "dictionary")
    with pytest.raises(ValueError, match="array"):
        func(np.zeros((3, 3, 2, 2, 2)), "dictionary")
    with pytest.raises(ValueError, match="array"):
        func(np.zeros((3,)), "images")
    with pytest.raises(ValueError, match="array"):
        func(np.zeros((2, 2, 3, 3, 2, 2)), "codes")
    with pytest.raises(ValueError, match="array"):
        func(np.zeros((3, 3, 2)), "codes")


# ============================================================================ bad input
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_images_rejected(D, S, bad):
    imgs = S.clone()
    imgs[1, 3, 4] = bad
    with pytest.raises(ValueError, match="images"):
        csc.ConvBPDN(D, LMBDA).solve(imgs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_dictionary_rejected(D, bad):
    Dk = D.clone()
    Dk[2, 1, 1] = bad
    with pytest.raises(ValueError, match="dictionary"):
        csc.ConvBPDN(Dk, LMBDA)


@pytest.mark.parametrize("shape", [(W,), (1, 2, 1, H, W)], ids=["1-D", "5-D"])
def test_images_wrong_ndim(D, shape):
    with pytest.raises(ValueError, match="images"):
        csc.ConvBPDN(D, LMBDA).solve(torch.zeros(shape, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(4, W), (H, 4), (2, 4, 4)])
def test_kernel_larger_than_image(D, shape):
    with pytest.raises(ValueError, match="images.*kernels"):
        csc.ConvBPDN(D, LMBDA).solve(torch.zeros(shape, dtype=torch.float64))


@pytest.mark.parametrize("lmbda", [-0.1, float("nan"), float("inf")])
def test_bad_lambda(D, lmbda):
    with pytest.raises(ValueError, match="lmbda"):
        csc.ConvBPDN(D, lmbda)


@pytest.mark.parametrize("lmbda", [None, "abc", [0.1, 0.2]])
def test_non_numeric_lambda(D, lmbda):
    with pytest.raises(TypeError, match="lmbda"):
        csc.ConvBPDN(D, lmbda)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
def test_integer_images_rejected(D, S, dtype):
    with pytest.raises(TypeError, match="images"):
        csc.ConvBPDN(D, LMBDA).solve((S * 100).to(dtype))
    with pytest.raises(TypeError, match="images"):
        csc.ConvBPDN(D, LMBDA).solve((S * 100).to(dtype).numpy())


def test_integer_dictionary_rejected(D):
    with pytest.raises(TypeError, match="dictionary"):
        csc.ConvBPDN((D * 10).to(torch.int32), LMBDA)


def test_multichannel_dictionary_needs_matching_images(D):
    """A (K, C, kh, kw) dictionary takes C-channel images (tests/problems/test_colour.py); a
    2-D dictionary is refused."""
    mc = csc.ConvBPDN(D[:, None].expand(K, 3, KH, KW).contiguous(), LMBDA, csc.CBPDNOptions(max_iter=2))
    with pytest.raises(ValueError, match="images.*channels"):
        mc.solve(torch.rand(2, 16, 16, dtype=D.dtype))
    with pytest.raises(ValueError, match="dictionary"):
        csc.ConvBPDN(D[0], LMBDA)


def test_options_must_be_cbpdn_options(D):
    with pytest.raises(TypeError, match="options"):
        csc.ConvBPDN(D, LMBDA, {"max_iter": 3})


@pytest.mark.parametrize("weight", [
    pytest.param(np.ones(K + 1), id="wrong-length"),
    pytest.param(np.ones((K, H + 1, W)), id="wrong-spatial"),
    pytest.param(np.ones((3, K, H, W)), id="wrong-batch"),
    pytest.param(np.ones((K, 2, 2)), id="non-broadcasting"),
    pytest.param(-np.ones(K), id="negative-array"),
    pytest.param(np.r_[np.ones(K - 1), np.nan], id="nan-entry"),
    pytest.param(-1.0, id="negative-scalar"),
    pytest.param(float("nan"), id="nan-scalar"),
])
def test_bad_l1_weight(D, S, weight):
    with pytest.raises(ValueError, match="l1_weight"):
        solve(D, S[:2], max_iter=2, l1_weight=weight)


def test_dtype_mismatch_rejected_unless_dtype_option(D, S):
    with pytest.raises(TypeError, match="images"):
        csc.ConvBPDN(D, LMBDA).solve(S.float())
    with pytest.raises(TypeError, match="images"):
        csc.ConvBPDN(D.float(), LMBDA).solve(S)
    # the dtype option converts both
    res = csc.ConvBPDN(D.float(), LMBDA, csc.CBPDNOptions(dtype=torch.float64, max_iter=40)).solve(S)
    assert res.codes.dtype == torch.float64 and res.dictionary.dtype == torch.float64
    ref = solve(D.float().double(), S, max_iter=40)
    assert torch.equal(res.codes, ref.codes)
    res32 = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(dtype=torch.float32, max_iter=40)).solve(S)
    assert res32.codes.dtype == torch.float32 and res32.dictionary.dtype == torch.float32


def test_bad_initial_values(D, S):
    solver = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(max_iter=3))
    with pytest.raises(ValueError, match="y0"):
        solver.solve(S[:3], y0=torch.zeros(2, K, H, W, dtype=torch.float64))
    with pytest.raises(ValueError, match="y0"):
        solver.solve(S[:3], y0=torch.zeros(3, K, H, W + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="u0"):
        solver.solve(S[:3], u0=torch.zeros(3, K - 1, H, W, dtype=torch.float64))
    bad = torch.zeros(3, K, H, W, dtype=torch.float64)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="y0"):
        solver.solve(S[:3], y0=bad)


# ============================================================================ properties
def test_lambda_above_max_correlation_gives_zero_codes(D, S):
    corr = np.abs(np_adjoint(D.numpy(), S.numpy())).max(axis=(1, 2, 3))  # max |Dᵀs| per image
    res = solve(D, S, lmbda=1.2 * corr.max(), max_iter=500)
    assert int((res.codes != 0).sum()) == 0
    assert bool((res.iterations < 500).all())
    # just below the largest correlation, the image attaining it has a nonzero solution
    b = int(np.argmax(corr))
    low = solve(D, S[b], lmbda=0.9 * corr[b], max_iter=500)
    assert int((low.codes != 0).sum()) > 0


def test_nonneg_codes(D, S):
    free = solve(D, S, max_iter=200)
    assert bool((free.codes < 0).any()), "the unconstrained solution should have negative coefficients"
    res = solve(D, S, max_iter=200, nonneg=True)
    assert bool((res.codes >= 0).all())
    assert bool((res.codes > 0).any())


def test_no_boundary_cross_zeroes_last_rows_and_columns(S):
    Dk = torch.from_numpy(make_dictionary(kh=3, kw=6, seed=4))  # kh ≠ kw: rows and columns differ
    free = solve(Dk, S, max_iter=200)
    res = solve(Dk, S, max_iter=200, no_boundary_cross=True)
    assert bool((free.codes[..., H - 2:, :] != 0).any()) and bool((free.codes[..., :, W - 5:] != 0).any())
    assert int((res.codes[..., H - 2:, :] != 0).sum()) == 0, "last kh-1 = 2 rows"
    assert int((res.codes[..., :, W - 5:] != 0).sum()) == 0, "last kw-1 = 5 columns"
    # and no more than that: the last allowed row (H-kh) and column (W-kw) are in use
    assert bool((res.codes[..., H - 3, :] != 0).any())
    assert bool((res.codes[..., :, W - 6] != 0).any())


@pytest.fixture(scope="module")
def tight(D, S):
    """Tightly converged solves of two images with per-kernel weights."""
    w = np.random.RandomState(8).uniform(0.5, 1.5, size=K)
    res = solve(D, S[:2], max_iter=5000, rel_stop_tol=1e-6, l1_weight=w)
    assert bool((res.iterations < 5000).all()), "the tight solve must converge"
    return res, w


def test_solution_is_a_local_minimiser(D, S, tight):
    res, w = tight
    Dk, Sn = D.numpy(), S[:2].numpy()
    wk = w[:, None, None]
    y = res.codes.numpy()
    F, _, _ = np_objective(Dk, y, Sn, LMBDA, wk)
    F0, _, _ = np_objective(Dk, np.zeros_like(y), Sn, LMBDA, wk)
    assert bool((F < F0).all())
    rng = np.random.RandomState(11)
    for b in range(2):
        yb = y[b:b + 1]
        nz = yb != 0
        scale = 1e-3 * np.abs(yb[nz]).mean()
        for _ in range(10):
            d = np.zeros_like(yb)
            d[nz] = scale * rng.randn(int(nz.sum()))  # perturb the nonzeros
            Fp, _, _ = np_objective(Dk, yb + d, Sn[b:b + 1], LMBDA, wk)
            assert Fp[0] > F[b], "a perturbation of the nonzeros lowered the objective"
            d = scale * rng.randn(*yb.shape) * (rng.rand(*yb.shape) < 0.05)  # and of any coefficient
            Fp, _, _ = np_objective(Dk, yb + d, Sn[b:b + 1], LMBDA, wk)
            assert Fp[0] > F[b], "a perturbation lowered the objective"


def test_kkt_conditions_at_convergence(D, S, tight):
    """0 ∈ Dᵀ(Dy − s) + λ w ∂‖y‖₁: |g| ≤ λw on zeros, g = −λ w sign(y) on the support."""
    res, w = tight
    Dk = D.numpy()
    y = res.codes.numpy()
    g = np_adjoint(Dk, np_synthesis(Dk, y) - S[:2].numpy())
    lw = LMBDA * np.broadcast_to(w[None, :, None, None], y.shape)
    nz = y != 0
    assert 0 < nz.mean() < 0.5
    tol = 1e-4
    assert np.all(np.abs(g[~nz]) <= lw[~nz] * (1 + tol)), float((np.abs(g[~nz]) / lw[~nz]).max())
    err = np.abs(g[nz] + lw[nz] * np.sign(y[nz])) / lw[nz]
    assert err.max() <= tol, float(err.max())


def test_dual_variable_is_a_subgradient(D, S):
    """ρu ∈ λ w ∂‖y‖₁ after every y-step (the optimality condition of the soft threshold),
    preserved by the ρ/u rescaling: exact up to rounding, converged or not."""
    w = np.random.RandomState(3).uniform(0.5, 1.5, size=K)
    res = solve(D, S, max_iter=37, l1_weight=w)
    rho_u = (res.rho.reshape(-1, 1, 1, 1) * res.u).numpy()
    y = res.codes.numpy()
    lw = LMBDA * np.broadcast_to(w[None, :, None, None], y.shape)
    assert np.all(np.abs(rho_u) <= lw * (1 + 1e-12))
    nz = y != 0
    np.testing.assert_allclose(rho_u[nz], (lw * np.sign(y))[nz], rtol=1e-12)


def test_primal_residual_below_tolerance_when_converged(D, S):
    res = solve(D, S, max_iter=1000, rel_stop_tol=1e-3, record_stats=False)
    for b in range(S.shape[0]):
        assert int(res.iterations[b]) < 1000
        x, y = res.x[b], res.codes[b]
        assert float((x - y).norm() / max(x.norm(), y.norm())) < 1e-3


@pytest.mark.parametrize("on_y", [False, True])
def test_statistics_match_independent_objective(D, S, on_y):
    """The recorded objective terms of the last iteration, recomputed from the returned
    x (default, SPORCO's fEvalX) or y (objective_on_y)."""
    w = np.random.RandomState(1).uniform(0.5, 1.5, size=K)
    res = solve(D, S[:3], max_iter=80, l1_weight=w, objective_on_y=on_y)
    v = (res.codes if on_y else res.x).numpy()
    F, fid, l1 = np_objective(D.numpy(), v, S[:3].numpy(), LMBDA, w[:, None, None])
    for b in range(3):
        st = res.stats[b]
        assert st.objective[-1] == pytest.approx(F[b], rel=1e-10)
        assert st.data_fidelity[-1] == pytest.approx(fid[b], rel=1e-10)
        assert st.l1[-1] == pytest.approx(l1[b], rel=1e-10)
        np.testing.assert_allclose(st.objective, st.data_fidelity + LMBDA * st.l1, rtol=1e-12)
        assert st.rho[-1] > 0


def test_initial_rho_and_fixed_rho(D, S):
    res = solve(D, S[:2], max_iter=20)
    for st in res.stats:
        assert st.rho[0] == pytest.approx(50 * LMBDA + 1, rel=1e-15)
    res = solve(D, S[:2], max_iter=20, rho=2.5, auto_rho=False)
    for b, st in enumerate(res.stats):
        np.testing.assert_array_equal(st.rho, np.full(20, 2.5))
        assert float(res.rho[b]) == 2.5


def test_max_iter_zero(D, S):
    res = solve(D, S[:2], max_iter=0)
    assert int((res.codes != 0).sum()) == 0 and int((res.u != 0).sum()) == 0
    assert res.iterations.tolist() == [0, 0]
    np.testing.assert_allclose(res.rho.numpy(), 50 * LMBDA + 1)
    assert [len(st) for st in res.stats] == [0, 0]


def test_warm_start_from_converged_solution(D, S):
    first = solve(D, S[1], max_iter=3000, rel_stop_tol=1e-6)
    again = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(max_iter=3000, rel_stop_tol=1e-6, rho=float(first.rho))) \
        .solve(S[1], y0=first.codes, u0=first.u)
    assert int(again.iterations[0]) <= 2
    assert rel(again.codes, first.codes) <= 1e-4
    # y0 alone (u0 = (λ/ρ₀)·sign(y0)) also runs and converges
    warm = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(max_iter=3000)).solve(S[1], y0=first.codes.numpy())
    assert int(warm.iterations[0]) < 3000


def test_scalar_weight_equals_scaled_lambda(D, S):
    """λ·w is what matters once ρ₀ and ξ (which SPORCO derives from λ) are fixed."""
    common = dict(max_iter=150, rho=6.0, rsdl_target=2.0)
    a = solve(D, S, lmbda=0.05, l1_weight=2.0, **common)
    b = solve(D, S, lmbda=0.1, **common)
    assert torch.equal(a.iterations, b.iterations)
    assert rel(a.codes, b.codes) <= 1e-12


def test_weight_layouts_equivalent(D, S):
    B = S.shape[0]
    w = np.random.RandomState(4).uniform(0.3, 2.0, size=K)
    ref = solve(D, S, max_iter=150, l1_weight=w)
    for variant in (torch.from_numpy(w), list(w), np.broadcast_to(w[:, None, None], (K, H, W)).copy(),
                    np.broadcast_to(w[None, :, None, None], (B, K, H, W)).copy(), w[:, None, None]):
        res = solve(D, S, max_iter=150, l1_weight=variant)
        assert torch.equal(res.iterations, ref.iterations)
        assert rel(res.codes, ref.codes) <= 1e-13


@pytest.mark.parametrize("backend,interval", [
    numba_param("numba", 1, id="numba-1"), pytest.param("torch", 1, id="torch-1"), pytest.param("torch", 4, id="torch-4"),
    compiled_param("cpu", "compiled", 4, id="compiled-4"),
])
def test_per_image_weights_match_single_solves(D, S, backend, interval):
    """(B, K, H, W) weights follow their images while converged images leave the batch (or,
    between host reads, are frozen in it)."""
    w = np.random.RandomState(0).uniform(0.3, 2.0, size=(S.shape[0], K, H, W))
    res = solve(D, S, max_iter=300, l1_weight=w, record_stats=False, sync_interval=interval, backend=backend)
    its = res.iterations.tolist()
    assert len(set(its)) > 1
    assert interval == 1 or any(it % interval != 0 for it in its), its  # some image was frozen
    for b in range(S.shape[0]):
        alone = solve(D, S[b], max_iter=300, l1_weight=w[b], backend=backend)
        assert int(res.iterations[b]) == int(alone.iterations[0])
        assert rel(res.codes[b], alone.codes[0]) <= 1e-12


def test_heavily_weighted_kernel_unused(D, S):
    w = np.ones(K)
    w[3] = 1e6
    res = solve(D, S, max_iter=150, l1_weight=w)
    assert int((res.codes[:, 3] != 0).sum()) == 0
    assert int((res.codes != 0).sum()) > 0


# ===================================================================== float32 and stats
def test_float32_path(D, S):
    r32 = solve(D.float(), S.float(), max_iter=200)
    r64 = solve(D, S, max_iter=200)
    for name in ("codes", "x", "u", "rho", "dictionary"):
        assert getattr(r32, name).dtype == torch.float32, name
    assert r32.reconstruct().dtype == torch.float32
    assert bool(torch.isfinite(r32.codes).all())
    for b in range(S.shape[0]):
        st = r32.stats[b]
        assert np.all(np.isfinite(st.objective))
        assert np.all(np.diff(st.time) >= 0) and st.time[0] >= 0
        F64 = np_objective(D.numpy(), r64.codes[b:b + 1].numpy(), S[b:b + 1].numpy(), LMBDA)[0][0]
        F32 = np_objective(D.numpy(), r32.codes[b:b + 1].double().numpy(), S[b:b + 1].numpy(), LMBDA)[0][0]
        assert F32 == pytest.approx(F64, rel=1e-2)


def test_stats_time_and_json(D, S):
    res = solve(D, S[:2], max_iter=50)
    for st in res.stats:
        assert np.all(np.diff(st.time) >= 0) and st.time[0] >= 0
        d = json.loads(json.dumps(st.to_dict()))
        assert set(d) == {f.name for f in dataclasses.fields(csc.IterationStats)}
        assert all(len(v) == len(st) for v in d.values())
        assert np.all(st.primal_residual >= 0) and np.all(st.dual_residual >= 0)


@pytest.mark.parametrize("opts,one_sided", [
    ({}, "dual"),  # adaptive ρ: the dual criterion is met first, the primal one binds
    ({"rho": 20.0, "auto_rho": False}, "primal"),  # large fixed ρ: the dual criterion binds
], ids=["auto-rho", "fixed-large-rho"])
def test_stopping_rule_needs_both_residuals(D, S, opts, one_sided):
    """Each image stops at the first iteration where both residuals are below their
    tolerances (or at max_iter), with or without statistics."""
    res = solve(D, S, max_iter=400, **opts)
    quiet = solve(D, S, max_iter=400, record_stats=False, **opts)
    assert torch.equal(res.iterations, quiet.iterations)
    seen_one_sided = 0
    for b, st in enumerate(res.stats):
        pri, dua = st.primal_residual < st.eps_primal, st.dual_residual < st.eps_dual
        met = pri & dua
        assert not met[:-1].any(), f"image {b} ran past an iteration that met the stopping rule"
        assert met[-1] or len(st) == 400
        seen_one_sided += int((pri & ~dua).sum() if one_sided == "primal" else (dua & ~pri).sum())
    assert seen_one_sided > 0, "the problem should exercise iterations where only one criterion holds"
    assert int(res.iterations.min()) < 400


# ================================================================================= CUDA
@pytest.mark.parametrize("device,backend", DEVICE_BACKENDS)
@pytest.mark.parametrize("record_stats", [True, False])
def test_device_solve_matches_cpu(D, S, device, backend, record_stats):
    """The solve of every (device, back end) pair but the numba one matches an independent
    reference, the numba back end on the CPU (float64), and keeps its outputs on that
    device. The host reads convergence every 10 iterations (CUDA's default sync_interval,
    given on the CPU, whose default is 1), so images converging between two reads are
    frozen on the device."""
    if not NUMBA_AVAILABLE:
        pytest.skip(f"the reference is missing: {NUMBA_MISSING}")
    cpu = solve(D, S, max_iter=300, record_stats=record_stats, backend="numba")
    sync = {} if device == "cuda" else {"sync_interval": 10}
    res = solve(D, S, max_iter=300, record_stats=record_stats, device=device, backend=backend, **sync)
    assert cpu.backend == "numba" and res.backend.split()[0] == backend
    for name in ("codes", "x", "u", "rho", "iterations", "dictionary"):
        assert getattr(res, name).device.type == device, name
    assert res.reconstruct().device.type == device
    assert res.iterations.cpu().tolist() == cpu.iterations.tolist()
    assert len(set(cpu.iterations.tolist())) > 1 and any(it % 10 for it in cpu.iterations.tolist())
    for name in ("codes", "x", "u"):
        for b in range(S.shape[0]):
            err = rel(getattr(res, name)[b], getattr(cpu, name)[b])
            assert err <= 1e-10, f"{name}[{b}] on {device}: {err:.2e}"
    np.testing.assert_allclose(res.rho.cpu().numpy(), cpu.rho.numpy(), rtol=1e-10)
    if record_stats:
        for a, b in zip(res.stats, cpu.stats):
            np.testing.assert_allclose(a.objective, b.objective, rtol=1e-10)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_and_a_cpu_dictionary_following_them(D, S):
    res = solve(D.cuda(), S.cuda(), max_iter=100, record_stats=False, sync_interval=5)
    assert res.codes.is_cuda and res.iterations.is_cuda
    cpu = solve(D, S, max_iter=100, record_stats=False)
    assert res.iterations.cpu().tolist() == cpu.iterations.tolist()
    assert rel(res.codes, cpu.codes) <= 1e-10
    moved = csc.ConvBPDN(D, LMBDA, csc.CBPDNOptions(max_iter=100, record_stats=False)).solve(S.cuda())
    assert moved.codes.is_cuda and rel(moved.codes, cpu.codes) <= 1e-10  # the CPU dictionary followed the images


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_loop_does_not_synchronise_every_iteration(D, S):
    """With statistics off, host synchronisations happen every sync_interval iterations
    and at the end, not every iteration: 40 iterations sync no more often than 10 do
    when the interval exceeds both."""
    import warnings

    def count_syncs(iters):
        solver = csc.ConvBPDN(D.cuda(), LMBDA, csc.CBPDNOptions(
            max_iter=iters, rel_stop_tol=0.0, record_stats=False, sync_interval=1000))
        solver.solve(S.cuda())  # warm-up: allocations, cuFFT plans
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                solver.solve(S.cuda())
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    assert count_syncs(40) == count_syncs(10)
