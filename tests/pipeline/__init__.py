"""Tests of csc.pipeline."""
