"""Tests of csc.cli."""
