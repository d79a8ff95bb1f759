"""The bias protocol object (structures/bias.py): grammar, field values, switches, steps of ramps."""
from __future__ import annotations

import math

import pytest

from ionwire.structures.bias import BiasProtocol, resolve_bias
from ionwire.structures.errors import ParameterError


def test_steps_table_of_the_grammar():
    p = BiasProtocol.from_mapping({"steps": [{"field_V_per_um": 4.0, "duration_s": 7200.0},
                                             {"field_V_per_um": 0.0, "duration_s": 3600.0}]})
    assert p.total_duration_s == 10800.0
    assert p.field_at(0.0) == 4.0 and p.field_at(7199.9) == 4.0
    assert p.field_at(7200.0) == 0.0  # right-continuous at the switch
    assert p.field_at(10800.0) == 0.0
    assert p.switch_times() == (7200.0,)
    assert p.is_piecewise_constant()
    assert p.piecewise_constant() == [(0.0, 7200.0, 4.0), (7200.0, 10800.0, 0.0)]
    assert p.positive_electrode(100.0) == "left" and p.positive_electrode(8000.0) is None
    assert math.isclose(p.field_integral(0.0, 10800.0), 4.0 * 7200.0)
    assert BiasProtocol.from_mapping(p.to_mapping()).segments == p.segments


def test_constant_open_and_closed():
    p = BiasProtocol.from_mapping({"field_V_per_um": -2.5})
    assert p.total_duration_s is None and p.field_at(1e9) == -2.5
    assert p.piecewise_constant() == [(0.0, math.inf, -2.5)]
    assert p.positive_electrode(0.0) == "right"
    q = p.with_duration(100.0)
    assert q.total_duration_s == 100.0 and q.switch_times() == () and q.piecewise_constant() == [(0.0, 100.0, -2.5)]
    with pytest.raises(ParameterError, match="outside"):
        q.field_at(101.0)


def test_square_wave_polarity_switches():
    p = BiasProtocol.from_mapping({"square_wave": {"amplitude_V_per_um": 4.0, "period_s": 10.0, "cycles": 3,
                                                   "duty": 0.3}})
    assert p.total_duration_s == pytest.approx(30.0)
    assert p.switch_times() == pytest.approx((3.0, 10.0, 13.0, 20.0, 23.0))
    assert [p.positive_electrode(t) for t in (1.0, 5.0, 11.0, 15.0)] == ["left", "right", "left", "right"]
    assert p.field_at(5.0) == -4.0
    # zero mean needs duty 0.5: 0.3 * 4 - 0.7 * 4 per period
    assert p.field_integral(0.0, 30.0) == pytest.approx(3 * 10.0 * (0.3 * 4.0 - 0.7 * 4.0))
    sym = BiasProtocol.square_wave(4.0, 10.0, 3)
    assert sym.field_integral(0.0, 30.0) == pytest.approx(0.0, abs=1e-12)


def test_zero_amplitude_wave_is_rest():
    p = BiasProtocol.square_wave(0.0, 10.0, 2)
    assert all(e == 0.0 for _, _, e in p.piecewise_constant())
    assert {p.positive_electrode(t) for t in (0.0, 4.0, 6.0, 19.0)} == {None}


def test_ramp_midpoint_steps_converge_and_keep_the_integral():
    p = BiasProtocol.from_mapping({"ramp": {"from_V_per_um": 0.0, "to_V_per_um": 4.0,
                                            "rate_V_per_um_per_s": 0.5}, "ramp_step_s": 1.0})
    assert p.total_duration_s == 8.0 and not p.is_piecewise_constant()
    assert p.field_at(2.0) == pytest.approx(1.0)
    steps = p.piecewise_constant()
    assert len(steps) == 8 and steps[0] == pytest.approx((0.0, 1.0, 0.25))
    assert sum((b - a) * e for a, b, e in steps) == pytest.approx(p.field_integral(0, 8.0))
    # the largest deviation from the ramp is rate * step / 2: halving the step halves it
    dev = []
    for h in (1.0, 0.5, 0.25):
        dev.append(max(abs(p.field_at(t) - e) for a, b, e in p.piecewise_constant(h)
                       for t in (a, 0.5 * (a + b), b - 1e-12)))
    assert dev == pytest.approx([0.25, 0.125, 0.0625], rel=1e-6)
    with pytest.raises(ParameterError, match="max_step_s"):
        BiasProtocol.ramp(0.0, 1.0, 0.1).piecewise_constant()


def test_triangle_vertices():
    p = BiasProtocol.from_mapping({"triangle": {"amplitude_V_per_um": 2.0, "rate_V_per_um_per_s": 1.0,
                                                "cycles": 2}})
    assert p.total_duration_s == 16.0
    assert p.switch_times() == (2.0, 6.0, 8.0, 10.0, 14.0)
    assert [p.field_at(t) for t in (0, 1, 2, 4, 6, 7, 8)] == pytest.approx([0, 1, 2, 0, -2, -1, 0])
    assert p.field_integral(0.0, 16.0) == pytest.approx(0.0, abs=1e-12)
    assert p.max_abs_field() == 2.0


def test_callable():
    p = BiasProtocol.from_callable(lambda t: 1.0 if t < 5.0 else -1.0, 10.0, switch_times=(5.0,),
                                   piecewise_constant=True)
    assert p.piecewise_constant() == [(0.0, 5.0, 1.0), (5.0, 10.0, -1.0)]
    s = BiasProtocol.from_callable(math.sin, 2 * math.pi)
    assert s.field_integral(0.0, math.pi) == pytest.approx(2.0, rel=1e-6)
    assert not s.is_piecewise_constant()
    with pytest.raises(ParameterError, match="switch_times"):
        BiasProtocol.from_callable(math.sin, 1.0, switch_times=(2.0,))


@pytest.mark.parametrize("table, message", [
    ({}, "exactly one of"),
    ({"field_V_per_um": 1.0, "steps": []}, "exactly one of"),
    ({"field": 1.0}, "unknown key bias.field"),
    ({"steps": [{"field_V_per_um": 1.0}]}, "missing key duration_s"),
    ({"steps": [{"field_V_per_um": 1.0, "duration_s": -1.0}]}, r"steps\[0\].duration_s"),
    ({"steps": [{"field_V_per_um": "4", "duration_s": 1.0}]}, "expected a number"),
    ({"steps": []}, "non-empty list"),
    ({"square_wave": {"amplitude_V_per_um": 1.0, "period_s": 1.0, "cycles": 0}}, "cycles"),
    ({"square_wave": {"amplitude_V_per_um": 1.0, "period_s": 1.0, "cycles": 1, "duty": 1.0}}, "duty"),
    ({"square_wave": {"amplitude_V_per_um": 1.0, "period_s": 1.0, "cycles": 1, "phase": 1.0}},
     "unknown key bias.square_wave.phase"),
    ({"ramp": {"from_V_per_um": 1.0, "to_V_per_um": 1.0, "rate_V_per_um_per_s": 1.0}}, "equal"),
    ({"ramp": {"from_V_per_um": 0.0, "to_V_per_um": 1.0, "rate_V_per_um_per_s": 0.0}}, "must not be 0"),
    ({"steps": [[1.0, 1.0]], "duration_s": 2.0}, "only for a constant"),
    ({"field_V_per_um": 5000.0}, "implausible"),
])
def test_bad_tables_one_clear_error(table, message):
    with pytest.raises(ParameterError, match=message):
        BiasProtocol.from_mapping(table)


def test_resolve_bias_old_style_and_conflict():
    p, rest = resolve_bias({"kmc": {"field_V_per_um": 2.0, "duration_s": 1e-6}, "seed": 1},
                           field_keys=("kmc.field_V_per_um",), duration_keys=("kmc.duration_s",))
    assert p.piecewise_constant() == [(0.0, 1e-6, 2.0)] and rest["seed"] == 1
    p, rest = resolve_bias({"bias": {"field_V_per_um": 3.0}, "x": 1}, default_duration_s=50.0)
    assert p.total_duration_s == 50.0 and "bias" not in rest and rest["x"] == 1
    with pytest.raises(ParameterError, match=r"both \[bias\] and the old-style kmc.field_V_per_um"):
        resolve_bias({"bias": {"field_V_per_um": 3.0}, "kmc": {"field_V_per_um": 2.0}},
                     field_keys=("kmc.field_V_per_um",))
    with pytest.raises(ParameterError, match="old-style duration_s"):
        resolve_bias({"bias": {"steps": [[1.0, 2.0]]}, "duration_s": 3.0})
    assert resolve_bias({"sweep": {"field_V_per_um": [1.0, 2.0]}}, field_keys=("sweep.field_V_per_um",))[0] is None


def test_immutable():
    p = BiasProtocol.constant(1.0, 2.0)
    with pytest.raises(AttributeError):
        p.total_duration_s = 3.0


def test_hashable_and_equal_by_value():
    a = BiasProtocol.from_mapping({"steps": [[1.0, 2.0], [0.0, 1.0]]})
    b = BiasProtocol.steps([(1.0, 2.0), (0.0, 1.0)])
    assert a == b and hash(a) == hash(b)
