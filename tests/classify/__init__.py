"""Tests of csc.classify."""
