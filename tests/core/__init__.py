"""Tests of csc.core."""
