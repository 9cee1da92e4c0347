"""Tests of csc.science."""
