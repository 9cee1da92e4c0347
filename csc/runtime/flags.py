"""The one check of every boolean flag of csc (options, SPORCO's flags, keyword arguments).

It lives in the lowest layer so that every layer can use it (:mod:`csc.runtime.distributed`
too); :mod:`csc.core.checks` re-exports it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_bool"]


def check_bool(name: str, v, *, none: bool = False) -> bool | None:
    """``v`` as a bool: True or False (numpy's too), not 0/1 or a string (``"no"`` and
    ``"False"`` are true to Python's ``bool``: refused here, never read as true); with
    ``none``, None too (returned as is). The one check of every flag of csc: the options'
    fields, SPORCO's flags (:class:`csc.core.sporco_options.Flag`) and the API's keywords
    (``warm_start=``, ``resume=``, ``progress=`` …); ``TypeError`` naming ``name``."""
    if none and v is None:
        return None
    if not isinstance(v, (bool, np.bool_)):
        expected = "True, False or None" if none else "True or False"
        raise TypeError(f"{name}: expected {expected}, got {v!r} ({type(v).__name__})")
    return bool(v)
