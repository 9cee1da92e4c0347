"""Table of compare_revisions.sh's JSON records: csc/SPORCO speed-up per revision and the
change from the old revision to the new one (median over rounds)."""

import json
import statistics
import sys
from pathlib import Path


def _ratios(files, key):
    out = {}
    for f in files:
        d = json.loads(f.read_text())
        res = d["results"] if isinstance(d["results"], list) else [d["results"]]
        for r in res:
            out.setdefault(r.get("dtype", "float64"), []).append(float(r[key]))
    return out


def main(folder: str) -> None:
    folder = Path(folder)
    lines = ["| benchmark | dtype | old speed-up | new speed-up | new / old |", "|---|---|---|---|---|"]
    for name, key in (("bench", "ratio_median"), ("dictlearn", "ratio")):
        old = _ratios(sorted(folder.glob(f"{name}_old_*.json")), key)
        new = _ratios(sorted(folder.glob(f"{name}_new_*.json")), key)
        for dt in sorted(old):
            o, n = statistics.median(old[dt]), statistics.median(new.get(dt, [float("nan")]))
            lines.append(f"| {name} | {dt} | {o:.2f}× | {n:.2f}× | {n / o:.3f} |")
    text = "\n".join(lines)
    (folder / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1])
