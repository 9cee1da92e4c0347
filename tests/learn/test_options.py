"""The learners' options (csc.learn.options): their SPORCO name tables, their defaults, and
their old home csc.core.options (deprecated names, read without the core importing the learners:
tests/test_layers.py checks that no module of csc/core imports csc.learn)."""

from __future__ import annotations

import dataclasses
import re
import warnings

import pytest

import csc
import csc.core.options as core_options
from csc._compat import REMOVAL
from csc.learn import options as learn_options

#: every learner options class → its tables
TABLES = [
    (csc.DictUpdateOptions, learn_options.CCMOD["pgm"]),
    (csc.DictUpdateOptions, learn_options.CCMOD["cns"]),
    (csc.DictLearnOptions, learn_options.DICTLEARN["pgm"]),
    (csc.DictLearnOptions, learn_options.DICTLEARN["cns"]),
    (csc.OnlineDictLearnOptions, learn_options.ONLINE),
    (csc.OnlineDictLearnOptions, learn_options.ONLINE_MASKED),
]

MOVED = ["DictUpdateOptions", "DictLearnOptions", "OnlineDictLearnOptions", "DICTLEARN_CBPDN_DEFAULTS",
         "DICTLEARN_MASKDCPL_DEFAULTS", "ONLINE_CBPDN_DEFAULTS"]


@pytest.mark.parametrize("cls,table", TABLES, ids=[f"{c.__name__}-{t.what}" for c, t in TABLES])
def test_every_row_sets_a_field_of_its_class(cls, table):
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(table.sources()) <= names
    assert set(table.documented()) <= names


@pytest.mark.parametrize("name", MOVED)
def test_old_core_path_warns_and_gives_the_same_object(name):
    with pytest.warns(DeprecationWarning, match=re.escape(f"import csc.learn.options.{name} instead")) as got:
        value = getattr(core_options, name)
    assert value is getattr(learn_options, name)
    assert REMOVAL in str(got[0].message)
    assert got[0].filename == __file__  # the warning names the line that used the old name


def test_old_from_import_still_works():
    with pytest.warns(DeprecationWarning, match="csc.core.options.DictLearnOptions is deprecated"):
        from csc.core.options import DictLearnOptions
    assert DictLearnOptions is csc.DictLearnOptions is csc.learn.dictlearn.DictLearnOptions


def test_new_and_public_paths_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from csc.learn.options import DictLearnOptions, OnlineDictLearnOptions  # noqa: F401
        assert csc.DictLearnOptions is DictLearnOptions and csc.OnlineDictLearnOptions is OnlineDictLearnOptions
        assert csc.DictUpdateOptions is learn_options.DictUpdateOptions
        assert csc.learn.onlinecdl.ONLINE_CBPDN_DEFAULTS is learn_options.ONLINE_CBPDN_DEFAULTS


def test_unknown_core_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchOptions"):
        core_options.NoSuchOptions  # noqa: B018


def test_sporco_dicts_of_the_defaults_give_the_defaults():
    """The SPORCO dicts the learners merge their CBPDN options over are the defaults' own."""
    assert csc.CBPDNOptions.from_sporco(learn_options._DICTLEARN_CBPDN_SPORCO) == learn_options.DICTLEARN_CBPDN_DEFAULTS
    assert csc.CBPDNOptions.from_sporco(learn_options._ONLINE_CBPDN_SPORCO) == learn_options.ONLINE_CBPDN_DEFAULTS


def test_learner_option_dicts_are_merged_over_sporcos_learner_defaults():
    o = csc.DictLearnOptions.from_sporco({"CBPDN": {"AutoRho": {"Period": 3}}})
    assert o.cbpdn == learn_options.DICTLEARN_CBPDN_DEFAULTS.replace(rho_period=3)
    o = csc.OnlineDictLearnOptions.from_sporco({"CBPDN": {"MaxMainIter": 7}})
    assert o.cbpdn == learn_options.ONLINE_CBPDN_DEFAULTS.replace(max_iter=7)
    o = csc.OnlineDictLearnOptions.from_sporco({"CBPDN": {"MaxMainIter": 7}}, masked=True)
    assert o.cbpdn_mask == csc.MaskDcplOptions(max_iter=7) and o.cbpdn == learn_options.ONLINE_CBPDN_DEFAULTS
    with pytest.raises(ValueError, match="Momentum: expected MomentumNesterov, MomentumLinear or MomentumGenLinear"):
        csc.DictLearnOptions.from_sporco({"CCMOD": {"Momentum": object()}})
    with pytest.raises(ValueError, match="CCMOD.AutoStop.Enabled: PGM adaptive stopping is not supported"):
        csc.DictLearnOptions.from_sporco({"CCMOD": {"AutoStop": {"Enabled": True}}})
    assert csc.DictLearnOptions.from_sporco({"CCMOD": {"rho": None, "AutoRho": {"Period": None}}},
                                            dmethod="cns").ccmod == csc.DictUpdateOptions()  # None: the default
