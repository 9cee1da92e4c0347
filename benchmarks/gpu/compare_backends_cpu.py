"""ms per CBPDN iteration of the numba, compiled and torch-loop back ends on one device.

    python benchmarks/gpu/compare_backends_cpu.py [SIZE] [BATCH] [DEVICE]

SIZE² images (default 128), K = 144 random 12×12 kernels, float32 and float64; the time of
a 13-iteration solve minus a 3-iteration one, over 10 (set-up and compilation cancel; a
warm-up solve first). numba runs on the CPU only."""

import sys
import time

import torch

import csc


def main(size=128, n=1, device="cpu"):
    torch.manual_seed(0)
    K = 144
    for dt in (torch.float32, torch.float64):
        D = torch.randn(K, 12, 12, dtype=dt)
        D /= D.flatten(1).norm(dim=1).view(-1, 1, 1)
        S = torch.randn(n, size, size, dtype=dt)
        for b in (("numba",) if device == "cpu" else ()) + ("compiled", "torch"):
            o = csc.CBPDNOptions(max_iter=3, rel_stop_tol=0, backend=b, record_stats=False, device=device,
                                 fftw_planner="FFTW_ESTIMATE")
            csc.ConvBPDN(D, 0.05, o).solve(S)  # warm-up / compilation
            t = {}
            for iters in (13, 3):
                start = time.perf_counter()
                csc.ConvBPDN(D, 0.05, o.replace(max_iter=iters)).solve(S)
                if device != "cpu":
                    torch.cuda.synchronize()
                t[iters] = time.perf_counter() - start
            print(f"{size}² K{K} n={n} {dt} {b}: {(t[13] - t[3]) / 10 * 1e3:.1f} ms/iter", flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]) if a else 128, int(a[1]) if len(a) > 1 else 1, a[2] if len(a) > 2 else "cpu")
