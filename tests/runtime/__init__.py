"""Tests of csc.runtime."""
