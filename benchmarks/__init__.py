"""The checkout's benchmarks: the SPORCO comparison harness behind ``csc bench``
(:mod:`benchmarks.bench`), the scripts beside it, and their results (``results/``).

A package so that the harness imports as ``benchmarks.bench`` from the repository's root
(tests, ``csc bench``, ``python -m benchmarks.bench``); it is not part of the installed csc.
See README.md in this folder.
"""
