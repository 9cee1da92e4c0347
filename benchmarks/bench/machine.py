"""The machine record every benchmark JSON carries, and the JSON writer.

:func:`machine_info`: platform, CPU model and counts, memory, library versions, thread
settings, csc's back end on the device, the device name, the git commit of the checkout
(and whether its tracked tree differs) and the load averages. :func:`warn_if_busy` warns
before a run on a loaded machine; :func:`write_json` writes a report with numpy values
converted. Used by ``csc bench`` and by the other scripts of ``benchmarks/``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from .problem import PLANNER_EFFORT
from .runners import csc_backend

__all__ = ["machine_info", "warn_if_busy", "write_json"]

def _cpu_info() -> dict:
    info: dict = {}
    model, phys = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            cur = {}
            for line in f:
                if ":" in line:
                    k, v = (x.strip() for x in line.split(":", 1))
                    cur[k] = v
                    if k == "model name" and model is None:
                        model = v
                elif cur:
                    phys.add((cur.get("physical id"), cur.get("core id")))
                    cur = {}
            if cur:
                phys.add((cur.get("physical id"), cur.get("core id")))
    except OSError:
        pass
    info["cpu_model"] = model or platform.processor()
    info["logical_cpus"] = os.cpu_count()
    info["cpus_available"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if phys and (None, None) not in phys:
        info["physical_cores"] = len(phys)
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gb"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return info


def machine_info(device: str = "cpu", threads: int | None = None, planner: str | None = PLANNER_EFFORT,
                 backend: str = "auto") -> dict:
    """The machine record of every benchmark JSON: platform, CPU model and counts, memory,
    versions (torch, numpy, scipy, sporco, pyfftw, numba, csc), torch threads, pyFFTW
    threads and planner, whether torch has MKL, csc's back end on ``device`` with
    ``backend`` (:func:`csc_backend`), the device name, the git commit (and whether the
    tracked tree differs from it) and the load averages now."""
    import torch

    info: dict = {"platform": platform.platform(), "python": platform.python_version()}
    info.update(_cpu_info())
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    for mod in ("sporco", "pyfftw", "scipy", "numba", "csc"):
        try:
            versions[mod] = getattr(__import__(mod), "__version__", "?")
        except ImportError:
            versions[mod] = None
    info["versions"] = versions
    info["torch_threads"] = torch.get_num_threads()
    info["pyfftw_threads"] = threads
    info["fftw_planner_effort"] = planner
    info["torch_mkl"] = torch.backends.mkl.is_available()
    try:
        info["csc_backend"] = csc_backend(device, backend)
    except (ValueError, RuntimeError) as exc:
        info["csc_backend"] = {"error": str(exc)}
    if str(device).startswith("cuda"):
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = f"cpu: {info['cpu_model']}"
    try:
        root = Path(__file__).resolve().parents[2]  # the checkout
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True)
        if head.returncode == 0:
            info["git_commit"] = head.stdout.strip()
            info["git_dirty"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    info["loadavg"] = list(os.getloadavg())
    info["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return info


def warn_if_busy(threshold: float = 0.5) -> float:
    """Print a warning when the 1-minute load average is ≥ threshold; return it."""
    busy = os.getloadavg()[0]
    if busy >= threshold:
        print(f"WARNING: load average {busy:.2f} before the run: other processes are using the CPU, so the "
              "timings are not representative (threaded torch/FFTW suffer most; see benchmarks/README.md)",
              flush=True)
    return busy


def write_json(path: str | os.PathLike, report: dict) -> Path:
    """Write ``report`` as indented JSON (numpy scalars and arrays converted), folders made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=_json_default))
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
