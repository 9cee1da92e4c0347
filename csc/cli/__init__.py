"""Command line: ``csc COMMAND`` (parser and commands in :mod:`csc.cli.main`)."""

from csc.cli.main import main

__all__ = ["main"]
