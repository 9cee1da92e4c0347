"""``python -m benchmarks.bench ARGS`` (from the checkout's root): the comparison, as ``csc bench ARGS``;
also the entry of the memory children (``--_mem-child``)."""

from .command import main

main()
