"""The console table of a comparison report (single-image or batch mode)."""

from __future__ import annotations

import statistics

__all__ = ["print_table"]

def _fmt_mem(m: dict | None, key: str = "peak_mb") -> str:
    if not m:
        return "-"
    if "error" in m:
        return "error"
    s = f"{m[key]:.0f}"
    if "device_peak_mb" in m:
        s += f" (+{m['device_peak_mb']:.0f} dev)"
    return s


def _fmt_floor(row: dict) -> str:
    f = row.get("floor")
    return "-" if not f else f"{f['csc_over_floor']:.2f} ({f['floor_ms_per_iter']:.2f} ms)"


def print_table(report: dict) -> None:
    rows = report["results"]
    if report["mode"] == "single":
        hdr = ["dtype", "SPORCO ms/it", "csc ms/it", "ratio", "SPORCO setup ms",
               "SPORCO peak MB", "csc peak MB", "max|Δ|/max|y|", "support Δ", "csc/floor"]
        lines = []
        for r in rows:
            mem = r.get("memory", {})
            lines.append([
                r["dtype"],
                f"{r['sporco']['ms_per_iter_best']:.2f} / {r['sporco']['ms_per_iter_median']:.2f}",
                f"{r['csc']['ms_per_iter_best']:.2f} / {r['csc']['ms_per_iter_median']:.2f}",
                f"{r['ratio_best']:.2f} / {r['ratio_median']:.2f}",
                f"{1e3 * statistics.median(r['sporco']['setup_s']):.1f}",
                _fmt_mem(mem.get("sporco")), _fmt_mem(mem.get("csc")),
                f"{r['codes_difference']['max_abs_diff_over_max_abs']:.1e}",
                f"{r['codes_difference']['support_mismatch_fraction']:.1e}",
                _fmt_floor(r),
            ])
        note = ("ms/it and ratio: best / median of the repeats; ratio = SPORCO / csc (> 1: csc faster); "
                "peak MB: peak resident memory of a solve above the loaded process (README: Memory); "
                "csc/floor: csc's best time over the memory-bandwidth floor (README: bandwidth floor)")
    else:
        hdr = ["dtype", "SPORCO img-it/s", "csc batch img-it/s", "ratio", "ratio end-to-end",
               "SPORCO peak MB (1 img)", "csc peak MB (batch)", "max|Δ|/max|y|", "csc/floor"]
        lines = []
        for r in rows:
            mem = r.get("memory", {})
            sp, cs = r["sporco_one_by_one"]["image_iters_per_s"], r["csc_batch"]["image_iters_per_s"]
            lines.append([
                r["dtype"], f"{sp['best']:.1f} / {sp['median']:.1f}", f"{cs['best']:.1f} / {cs['median']:.1f}",
                f"{r['ratio_best']:.2f} / {r['ratio_median']:.2f}", f"{r['ratio_end_to_end_median']:.2f}",
                _fmt_mem(mem.get("sporco_one_image")), _fmt_mem(mem.get("csc_batch")),
                f"{r['codes_difference_worst']['max_abs_diff_over_max_abs']:.1e}",
                _fmt_floor(r),
            ])
        note = ("image-iterations per second, best / median of the repeats; ratio = csc / SPORCO (> 1: csc faster); "
                "end-to-end includes SPORCO's per-image object construction")
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(hdr)]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(fmt.format(*hdr))
    print("-+-".join("-" * w for w in widths))
    for l in lines:
        print(fmt.format(*l))
    print(note)
