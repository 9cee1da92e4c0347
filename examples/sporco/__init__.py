"""SPORCO 0.2.2's convolutional example scripts on csc: one module per script (``_common`` holds the shared pieces)."""
