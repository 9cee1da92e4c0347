"""The SPORCO name tables (csc.core.sporco_options): every row names a real field of its options
class, the documentation tables are read off them, and the rules' messages name the option."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import csc
from csc.core import sporco_options as so
from csc.core.options import SPORCO_FISTA_NAMES

#: every solver options class → its table
TABLES = [
    (csc.CBPDNOptions, so.CBPDN),
    (csc.GradRegOptions, so.GRADREG),
    (csc.MaskDcplOptions, so.MASKDCPL),
    (csc.L1L1GrdOptions, so.L1L1GRD),
    (csc.CBPDNJointOptions, so.JOINT),
    (csc.FISTAOptions, so.FISTA),
]


@pytest.mark.parametrize("cls,table", TABLES, ids=[f"{c.__name__}-{t.what}" for c, t in TABLES])
def test_every_row_sets_a_field_of_its_class(cls, table):
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(table.sources()) <= names
    assert set(table.documented()) <= names


def test_classes_read_their_own_table():
    for cls, table in TABLES:
        assert cls._sporco is table, cls


def test_fista_name_table_covers_every_field():
    assert set(SPORCO_FISTA_NAMES) == {f.name for f in dataclasses.fields(csc.FISTAOptions)}
    assert SPORCO_FISTA_NAMES["record_stats"] == "FastSolve (inverted)"
    assert SPORCO_FISTA_NAMES["tau0"] == "AutoStop.Tau0"


def test_a_row_added_to_a_table_is_an_option():
    """Adding a SPORCO option is one row: a table extended by it reads it (and documents it)."""
    table = so.CBPDN.extend("ConvBPDNTest", {"Relax2": so.Field("relax", lambda v: v / 2, note="halved")})
    o = table.build(csc.CBPDNOptions, {"Relax2": 3.0, "MaxMainIter": 7})
    assert (o.relax, o.max_iter) == (1.5, 7)
    assert table.documented()["relax"] == "Relax2 (halved)"
    with pytest.raises(ValueError, match="Relax2: unknown SPORCO ConvBPDN option"):
        csc.CBPDNOptions.from_sporco({"Relax2": 3.0})


def test_checks_of_the_options_name_the_sporco_option():
    with pytest.raises(ValueError, match=r"^MaxMainIter \(max_iter: "):
        csc.FISTAOptions.from_sporco({"MaxMainIter": -1})
    with pytest.raises(ValueError, match=r"^AutoRho\.Scaling \(rho_scaling: "):
        csc.CBPDNOptions.from_sporco({"AutoRho": {"Scaling": 0.5}})
    with pytest.raises(ValueError, match=r"^GradWeight \(grad_weight: "):
        csc.GradRegOptions.from_sporco({"GradWeight": -1.0})
    with pytest.raises(ValueError, match=r"^backend: "):  # no SPORCO option: the field's name
        csc.CBPDNOptions.from_sporco({}, backend="gpu")


def test_nested_dicts_are_read_by_their_tables():
    o = csc.FISTAOptions.from_sporco({"AutoStop": {"Enabled": True, "Tau0": 0.5}})
    assert (o.auto_stop, o.tau0) == (True, 0.5)
    known = r"known: \['Enabled', 'Tau0'\]"
    with pytest.raises(ValueError, match=r"AutoStop\.Tau: unknown SPORCO AutoStop option; " + known):
        csc.FISTAOptions.from_sporco({"AutoStop": {"Tau": 0.5}})
    with pytest.raises(ValueError, match="AutoStop: expected a dict of AutoStop options, got True"):
        csc.FISTAOptions.from_sporco({"AutoStop": True})


def test_joint_l21_weight_row():
    w = np.random.default_rng(0).random((6, 5, 1, 1, 3))  # SPORCO (H, W, 1, 1, K)
    o = csc.CBPDNJointOptions.from_sporco({"L21Weight": w, "L1Weight": 0.5})
    np.testing.assert_array_equal(o.l21_weight, np.moveaxis(w[:, :, 0, 0, :], -1, 0))
    assert o.l1_weight == 0.5
    assert csc.CBPDNJointOptions.from_sporco({"L21Weight": 2.0}, l21_weight=3.0).l21_weight == 3.0  # overrides win
    with pytest.raises(ValueError, match="Foo: unknown SPORCO ConvBPDNJoint option"):
        csc.CBPDNJointOptions.from_sporco({"Foo": 1})
    with pytest.raises(ValueError, match="L21Weight"):
        csc.CBPDNJointOptions.from_sporco({"L21Weight": -1.0})


def test_derived_eval_flags_are_checked_against_auxvarobj():
    assert csc.CBPDNOptions.from_sporco({"AuxVarObj": True, "fEvalX": False, "gEvalY": True}).objective_on_y
    with pytest.raises(ValueError, match="gEvalY: False is inconsistent with AuxVarObj=True"):
        csc.CBPDNOptions.from_sporco({"gEvalY": False, "AuxVarObj": True})


def test_verbose_sets_the_iteration_table():
    """SPORCO's Verbose prints csc's iteration table in the ADMM solvers (CBPDNOptions.verbose)."""
    for cls in (csc.CBPDNOptions, csc.CBPDNJointOptions, csc.GradRegOptions, csc.MaskDcplOptions):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert cls.from_sporco({"Verbose": True}).verbose is True
            assert cls.from_sporco({"Verbose": False}).verbose is False


def test_verbose_warns_at_the_callers_line():
    """FISTA and the learners print no table: Verbose is said to be ignored."""
    for call in (lambda: csc.FISTAOptions.from_sporco({"Verbose": True}),
                 lambda: csc.DictLearnOptions.from_sporco({"Verbose": True})):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            call()
        assert [w.category for w in got] == [UserWarning]
        assert got[0].filename == __file__
