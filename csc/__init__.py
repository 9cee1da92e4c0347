"""csc — convolutional sparse coding on PyTorch.

Batched ADMM convolutional BPDN that gives SPORCO's answers on CPU and CUDA, and the
tools around it. The public API is re-exported here.
"""

from .cbpdn import CBPDNResult, ConvBPDN, IterationStats, encode
from .options import CBPDNOptions
from .sporco_compat import from_sporco_layout, to_sporco_layout

__version__ = "0.1.0"

__all__ = [
    "CBPDNOptions",
    "CBPDNResult",
    "ConvBPDN",
    "IterationStats",
    "encode",
    "from_sporco_layout",
    "to_sporco_layout",
]
