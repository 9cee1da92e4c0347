"""Examples of csc (``examples.sporco``: SPORCO's example scripts ported)."""
