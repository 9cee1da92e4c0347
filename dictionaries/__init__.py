"""Shipped dictionaries (kernels + manifest), installed as package data ``csc.dictionaries``."""
