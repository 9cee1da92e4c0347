"""CI preflight: the reference and back-end packages the test suite needs must import.

Without numba the numba back end's cases are skipped; without SPORCO every parity test is;
without pyFFTW the FFTW path is. The suite would then pass with half its parity coverage
gone, so CI stops here instead, naming what is missing.
"""

from __future__ import annotations

import importlib
import sys

REQUIRED = {
    "numba": "the fused CPU back end (csc.backends.numba_cpu) and its tests",
    "sporco": "the reference implementation of every parity test",
    "pyfftw": "the FFTW transforms of the fused back end and of SPORCO",
}


def main() -> int:
    missing = []
    for name, why in REQUIRED.items():
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a package failing to initialise
            missing.append(f"  {name} ({why}): {type(exc).__name__}: {exc}")
    if not missing:
        from csc.backends import fused

        if not fused.available():  # numba imports but csc's kernels do not
            missing.append(f"  csc's numba kernels: {fused.unavailable_reason()}")
    if missing:
        print("CI preflight failed: cannot import\n" + "\n".join(missing)
              + "\nInstall the dev extra (pip install -e '.[dev]') or fix the environment; "
                "without them the parity tests would be skipped, not run.", file=sys.stderr)
        return 1
    print("CI preflight: numba, sporco and pyfftw import; csc's numba kernels load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
