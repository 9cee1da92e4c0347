"""Tests of csc.learn."""
