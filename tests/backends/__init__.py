"""Tests of csc.backends."""
