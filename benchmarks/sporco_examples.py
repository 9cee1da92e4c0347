"""SPORCO 0.2.2's 40 convolutional example scripts on csc: every port of ``examples/sporco/`` run
at its script's own size with ``compare=True`` (csc and SPORCO, one thread each), and the table.

    python benchmarks/sporco_examples.py                    # all, resumable
    python benchmarks/sporco_examples.py cbpdn_gry gwnden_gry --redo
    python benchmarks/sporco_examples.py --quick --out /tmp/q   # the reduced sizes

Each script runs in its own process with ``OMP_NUM_THREADS=1`` (numpy's BLAS), torch, numba and
pyFFTW on one thread (``examples.sporco._common.single_thread``), and writes ``<script>.json`` in
the output folder (skipped when present unless ``--redo``). The table,
``benchmarks/results/sporco_examples/table.json`` and ``table.md``, lists the 40 scripts: the
status (``same`` with the measured precisions within the port's ``EXPECT``; ``same minimiser``
for ParConvBPDN; ``not yet`` with what is missing), csc's time against SPORCO's and the command.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "sporco_examples"

#: the 40 scripts (``examples/scripts/csc`` then ``cdl``); a string is why there is no port yet
SCRIPTS: dict[str, str | None] = {
    "cbpdn_ams_clr": None, "cbpdn_ams_grd_gry": None, "cbpdn_ams_gry": None, "cbpdn_clr_cd": None,
    "cbpdn_clr_gd": None, "cbpdn_clr_pd": None, "cbpdn_cuda": None, "cbpdn_grd_cuda": None, "cbpdn_gry": None,
    "cbpdn_jnt_clr": None, "cbpdn_md_gry": None, "cbpdn_pgm_clr": None, "cbpdn_pgm_gry": None,
    "cbpdnin_gry": None, "cbpdnin_wgt_gry": None, "cminl1_gry": None, "cprjl1_gry": None, "gwnden_clr": None,
    "gwnden_gry": None, "implsden_clr": None, "implsden_grd_clr": None, "implsden_grd_pd_dct": None,
    "implsden_grd_pd_pca": None, "parcbpdn_gry": None, "parcbpdn_md_gry": None,
    "cbpdndl_cns_gry": None, "cbpdndl_grd": None, "cbpdndl_jnt_clr": None,
    "cbpdndl_md_clr": "not yet: learning a colour (K, C, kh, kw) dictionary with a mask (DictLearn refuses it)",
    "cbpdndl_md_gry": None, "cbpdndl_parcns_clr": None, "cbpdndl_parcns_gry": None, "cbpdndl_pgm_clr": None,
    "cbpdndl_video": "not yet: 3-D kernels",
    "ccmod_cns_gry": None, "ccmod_pgm_gry": None,
    "onlinecdl_clr": None, "onlinecdl_clr_cupy": None, "onlinecdl_gry": None, "onlinecdl_msk_gry": None,
}
THREADS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1"}
CHILD = """
import json, sys
from examples.sporco import _common as C
C.single_thread()
import importlib
mod = importlib.import_module("examples.sporco." + sys.argv[1])
out = mod.run(quick=sys.argv[2] == "1", compare=True)
out.pop("arrays", None)
json.dump(out, open(sys.argv[3], "w"), indent=1)
"""


def ported(name: str) -> bool:
    """Whether ``examples/sporco/<name>.py`` is there (a script marked "not yet" may be ported
    on another branch)."""
    return (ROOT / "examples" / "sporco" / f"{name}.py").exists()


def run_one(name: str, out: Path, quick: bool, timeout: float) -> dict:
    """Run one port in its own single-threaded process; its record, or the error."""
    path = out / f"{name}.json"
    env = {**os.environ, **THREADS_ENV, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, name, "1" if quick else "0", str(path)], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            rec = {"script": name, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
            path.write_text(json.dumps(rec, indent=1))
    except subprocess.TimeoutExpired:
        rec = {"script": name, "error": f"did not finish in {timeout:.0f} s"}
        path.write_text(json.dumps(rec, indent=1))
    return json.loads(path.read_text())


def status(name: str, rec: dict | None) -> str:
    """The table's status of a script from its record and its port's ``EXPECT``."""
    if not ported(name):
        return SCRIPTS[name] or "not yet: port not written"
    mod = importlib.import_module(f"examples.sporco.{name}")
    if getattr(mod, "NOT_YET", None):
        return mod.NOT_YET
    if rec is None:
        return "not run"
    if "error" in rec:
        return f"error: {rec['error']}"
    d, expect = rec["diff"], mod.EXPECT
    prec = f"codes {d['codes']:.1e}, objective {d['objective']:.1e}, PSNR {d['psnr']:.1e} dB"
    if getattr(mod, "SAME_MINIMISER", False):
        par = rec.get("par", {})
        vs = (f"; against ParConvBPDN (one process, its own iterates and stopping): objective "
              f"{par['objective_diff']:.1e}, PSNR {par['psnr_diff']:.2f} dB" if par else "")
        return f"same minimiser ({prec} against SPORCO's ConvBPDN{vs}; {mod.NOTE})"
    ok = all(d[k] <= expect[k] for k in expect)
    return f"same ({prec})" if ok else f"different ({prec}; expected {expect})"


def table(out: Path, quick: bool) -> list[dict]:
    rows = []
    for name in SCRIPTS:
        path = out / f"{name}.json"
        rec = json.loads(path.read_text()) if path.exists() else None
        st = status(name, rec)
        small = out / "quick" / f"{name}.json"
        if st == "not run" and not quick and small.exists():  # the quick run's status meanwhile
            st = f"not run at full size yet; quick size: {status(name, json.loads(small.read_text()))}"
        row = {"script": name, "status": st,
               "command": f"python -m examples.sporco.{name} --compare" + (" --quick" if quick else "")}
        if rec and "diff" in rec:
            row.update(csc_time=rec["diff"]["csc_time"], sporco_time=rec["diff"]["sporco_time"],
                       csc=rec["csc"], sporco=rec["sporco"], diff=rec["diff"])
        rows.append(row)
    return rows


def write_table(rows: list[dict], dest: Path, quick: bool) -> None:
    (dest / "table.json").write_text(json.dumps(rows, indent=1))
    n_same = sum(r["status"].startswith("same (") for r in rows)
    n_min = sum(r["status"].startswith("same minimiser") for r in rows)
    n_not = sum(r["status"].startswith("not yet") for r in rows)
    sizes = "the ports' quick sizes" if quick else "the scripts' own sizes"
    lines = [f"# SPORCO 0.2.2's convolutional examples on csc ({sizes})",
             "", f"{n_same} of {len(rows)} give SPORCO's numbers, {n_min} its minimiser (ParConvBPDN, by design), "
             f"{n_not} are not yet possible on csc (the reason in the row), the others not run here. Float64 on both sides (SPORCO's scripts load float32 "
             "data; the ports cast them to float64), one thread each. Times: wall seconds of the script's solves, "
             "taken on a shared 2-core machine (other jobs ran beside), so ratios are indicative. "
             "Produced by `python benchmarks/sporco_examples.py" + (" --quick`." if quick else "`."),
             *(["", "Quick sizes (16–24² crops, 10 iterations): the times are fixed costs (JIT, FFTW plans, "
                "start-up) and say nothing of speed, and nothing is converged (ParConvBPDN's distance from csc's "
                "objective is its own iterates'); the statuses are what this table is for."] if quick else
               ["", "A script not run at full size yet shows its quick run's status (`quick/table.md`)."]), "",
             "| script | status | csc s | SPORCO s | SPORCO/csc | command |", "|---|---|---|---|---|---|"]
    for r in rows:
        ct, st = r.get("csc_time"), r.get("sporco_time")
        times = (f"{ct:.2f} | {st:.2f} | {st / ct:.1f}×" if ct else "– | – | –")
        cmd = f"`{r['command']}`" if ported(r["script"]) else "–"
        lines.append(f"| {r['script']} | {r['status']} | {times} | {cmd} |")
    (dest / "table.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scripts", nargs="*", help="a subset (default: every port)")
    p.add_argument("--redo", action="store_true", help="run again where a record exists")
    p.add_argument("--quick", action="store_true", help="the ports' reduced sizes")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {OUT}, or a quick/ folder in it)")
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds per script")
    p.add_argument("--table-only", action="store_true", help="write the table from the records there, run nothing")
    args = p.parse_args(argv)
    bad = [s for s in args.scripts if s not in SCRIPTS]
    if bad:
        p.error(f"scripts: not SPORCO example scripts: {bad}")
    out = args.out or (OUT / "quick" if args.quick else OUT)
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    todo = [s for s in (args.scripts or SCRIPTS) if ported(s) and not getattr(
        importlib.import_module(f"examples.sporco.{s}"), "NOT_YET", None) and (args.redo or not (out / f"{s}.json").exists())]
    from tqdm import tqdm

    for name in (bar := tqdm([] if args.table_only else todo, unit="script")):
        bar.set_description(name)
        rec = run_one(name, out, args.quick, args.timeout)
        bar.write(f"{name}: {status(name, rec)}")
    sys.path.insert(0, str(ROOT))
    write_table(table(out, args.quick), out, args.quick)
    print(f"wrote {out / 'table.md'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
