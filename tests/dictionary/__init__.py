"""Tests of csc.dictionary."""
