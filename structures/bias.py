"""Bias protocols: the applied field as a function of time, read by both models.

A :class:`BiasProtocol` is immutable.  It is a sequence of segments ``(t_start_s, t_end_s,
field_start_V_per_um, field_end_V_per_um)`` that tile ``[0, total_duration_s]`` -- a segment with
equal end fields is a constant step, one with different end fields a linear ramp -- or a Python
callable (library users).  The field is signed: > 0 is forward bias (the higher potential on the
left, Br-side contact, which is then the positive, vacancy-depleted electrode), < 0 reverse, 0 rest.

Config grammar (a ``[bias]`` table; exactly one of the forms, unknown keys are errors)::

    [bias]                                   # constant (today's behaviour)
    field_V_per_um = 4.0
    duration_s = 28800.0                     # optional for a constant field

    [bias]                                   # steps; a field of 0 is rest
    steps = [{field_V_per_um = 4.0, duration_s = 7200.0}, {field_V_per_um = 0.0, duration_s = 3600.0}]

    [bias.square_wave]                       # offset + amplitude for duty * period, then
    amplitude_V_per_um = 4.0                 # offset - amplitude for the rest of the period
    period_s = 600.0
    cycles = 10
    offset_V_per_um = 0.0                    # optional, default 0
    duty = 0.5                               # optional, default 0.5, in (0, 1)

    [bias.ramp]                              # linear ramp from -> to at a signed sweep rate
    from_V_per_um = 0.0
    to_V_per_um = 4.0
    rate_V_per_um_per_s = 1e-3               # |rate|; the duration is |to - from| / rate

    [bias.triangle]                          # offset -> offset + A -> offset - A -> offset per cycle
    amplitude_V_per_um = 4.0                 # (a cyclic-voltammetry sweep); A may be negative
    rate_V_per_um_per_s = 1e-3               # (then the first half-wave is reverse)
    cycles = 2
    offset_V_per_um = 0.0                    # optional

    ramp_step_s = 60.0                       # optional in any form: the step length of the
                                             # piecewise-constant approximation of ramps

Conventions:
- ``field_at(t)`` is right-continuous: at a segment boundary it is the field of the segment that
  starts there; at ``t = total_duration_s`` it is the end value of the last segment.
- ``switch_times()`` are the interior segment boundaries (every step boundary, each edge of a
  wave, each ramp vertex), sorted: the field may jump or the ramp kink there.  Two consecutive
  equal steps still have a boundary between them (harmless to a model that restarts there).
- ``piecewise_constant(max_step_s)`` is exact for steps and waves; a ramp segment of length T is
  cut into ``ceil(T / max_step_s)`` equal steps, each with the field at its midpoint (the midpoint
  value keeps the time integral of the field, hence the charge passed at constant conductance,
  exact on a linear ramp).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .errors import ParameterError

#: |field| above which a protocol is rejected (V/um; the same limit as structures.parameters)
MAX_FIELD_V_PER_UM = 1000.0
#: the longest protocol (s): a century
MAX_DURATION_S = 3.2e9

FORMS = ("field_V_per_um", "steps", "square_wave", "ramp", "triangle")
_TOP_KEYS = FORMS + ("duration_s", "ramp_step_s")

Segment = tuple[float, float, float, float]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{where}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{where}: expected a finite number, got {value!r}")
    return value


def _field(value: Any, where: str) -> float:
    e = _number(value, where)
    if abs(e) > MAX_FIELD_V_PER_UM:
        raise ParameterError(f"{where} = {e:g} V/um is implausible: |E| must be at most {MAX_FIELD_V_PER_UM:g} V/um")
    return e


def _duration(value: Any, where: str) -> float:
    d = _number(value, where)
    if not 0.0 < d <= MAX_DURATION_S:
        raise ParameterError(f"{where} = {d:g} s must be positive and at most {MAX_DURATION_S:.3g} s")
    return d


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**6:
        raise ParameterError(f"{where}: expected an integer number of cycles in [1, 1e6], got {value!r}")
    return int(value)


def _table(value: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict:
    if not isinstance(value, Mapping):
        raise ParameterError(f"{where}: expected a table, got {value!r}")
    allowed = tuple(required) + tuple(optional)
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ParameterError(f"unknown key {where}.{unknown[0]} (allowed in [{where}]: {', '.join(allowed)})")
    missing = [k for k in required if k not in value]
    if missing:
        raise ParameterError(f"{where}: missing key {missing[0]} (required: {', '.join(required)})")
    return dict(value)


@dataclass(frozen=True)
class BiasProtocol:
    """The applied field E(t) (V/um, signed) over ``[0, total_duration_s]``.

    Build it with :meth:`constant`, :meth:`steps`, :meth:`square_wave`, :meth:`ramp`,
    :meth:`triangle`, :meth:`from_callable` or :meth:`from_mapping` (a ``[bias]`` table; module
    docstring).  ``segments``: ``((t0, t1, E0, E1), ...)`` tiling the protocol (empty for a
    callable); ``total_duration_s`` is None only for a constant field with no duration.
    ``ramp_step_s``: the default ``max_step_s`` of :meth:`piecewise_constant` for ramps.
    ``kind``: "constant", "steps", "square_wave", "ramp", "triangle" or "callable";
    ``description``: the table it was built from, as JSON (for provenance; :meth:`to_mapping`).
    """

    segments: tuple[Segment, ...]
    total_duration_s: float | None
    kind: str = "steps"
    ramp_step_s: float | None = None
    function: Callable[[float], float] | None = None
    callable_switch_times: tuple[float, ...] = ()
    callable_piecewise_constant: bool = False
    description: str = "{}"

    # ----------------------------------------------------------------------------------------
    # construction
    # ----------------------------------------------------------------------------------------
    @classmethod
    def constant(cls, field_V_per_um: float, duration_s: float | None = None,
                 ramp_step_s: float | None = None) -> "BiasProtocol":
        """A constant field; with no duration it lasts as long as the run that uses it."""
        e = _field(field_V_per_um, "field_V_per_um")
        desc: dict[str, Any] = {"field_V_per_um": e}
        if duration_s is None:
            return cls(segments=(), total_duration_s=None, kind="constant", ramp_step_s=ramp_step_s,
                       function=None, description=_json(desc | {"_constant": e}))
        d = _duration(duration_s, "duration_s")
        desc["duration_s"] = d
        return cls(segments=((0.0, d, e, e),), total_duration_s=d, kind="constant", ramp_step_s=ramp_step_s,
                   description=_json(desc))

    @classmethod
    def steps(cls, steps: Sequence[tuple[float, float]] | Sequence[Mapping[str, Any]],
              ramp_step_s: float | None = None, *, where: str = "steps") -> "BiasProtocol":
        """Constant steps, given as ``[(field_V_per_um, duration_s), ...]`` or as
        ``[{"field_V_per_um": E, "duration_s": T}, ...]``; a field of 0 is rest."""
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or len(steps) == 0:
            raise ParameterError(f"{where}: expected a non-empty list of {{field_V_per_um, duration_s}} tables, "
                                 f"got {steps!r}")
        segs = []
        t = 0.0
        rows = []
        for i, s in enumerate(steps):
            w = f"{where}[{i}]"
            if isinstance(s, Mapping):
                s = _table(s, w, ("field_V_per_um", "duration_s"))
                e, d = _field(s["field_V_per_um"], f"{w}.field_V_per_um"), _duration(s["duration_s"], f"{w}.duration_s")
            elif isinstance(s, Sequence) and len(s) == 2:
                e, d = _field(s[0], f"{w}.field_V_per_um"), _duration(s[1], f"{w}.duration_s")
            else:
                raise ParameterError(f"{w}: expected a table {{field_V_per_um, duration_s}}, got {s!r}")
            segs.append((t, t + d, e, e))
            rows.append({"field_V_per_um": e, "duration_s": d})
            t += d
        _check_total(t, where)
        return cls(segments=tuple(segs), total_duration_s=t, kind="steps", ramp_step_s=ramp_step_s,
                   description=_json({"steps": rows}))

    @classmethod
    def square_wave(cls, amplitude_V_per_um: float, period_s: float, cycles: int, offset_V_per_um: float = 0.0,
                    duty: float = 0.5, ramp_step_s: float | None = None, *,
                    where: str = "square_wave") -> "BiasProtocol":
        """``cycles`` periods of: offset + amplitude for duty * period, then offset - amplitude."""
        a = _field(amplitude_V_per_um, f"{where}.amplitude_V_per_um")
        o = _field(offset_V_per_um, f"{where}.offset_V_per_um")
        p = _duration(period_s, f"{where}.period_s")
        n = _count(cycles, f"{where}.cycles")
        duty = _number(duty, f"{where}.duty")
        if not 0.0 < duty < 1.0:
            raise ParameterError(f"{where}.duty must be in (0, 1), got {duty!r}")
        _field(o + a, f"{where}: offset + amplitude")
        _field(o - a, f"{where}: offset - amplitude")
        _check_total(n * p, where)
        segs = []
        for k in range(n):
            t0, tm, t1 = k * p, k * p + duty * p, (k + 1) * p
            segs.append((t0, tm, o + a, o + a))
            segs.append((tm, t1, o - a, o - a))
        return cls(segments=tuple(segs), total_duration_s=n * p, kind="square_wave", ramp_step_s=ramp_step_s,
                   description=_json({"square_wave": {"amplitude_V_per_um": a, "period_s": p, "cycles": n,
                                                      "offset_V_per_um": o, "duty": duty}}))

    @classmethod
    def ramp(cls, from_V_per_um: float, to_V_per_um: float, rate_V_per_um_per_s: float,
             ramp_step_s: float | None = None, *, where: str = "ramp") -> "BiasProtocol":
        """A linear ramp from ``from_V_per_um`` to ``to_V_per_um`` at the sweep rate |rate|."""
        e0 = _field(from_V_per_um, f"{where}.from_V_per_um")
        e1 = _field(to_V_per_um, f"{where}.to_V_per_um")
        r = _rate(rate_V_per_um_per_s, f"{where}.rate_V_per_um_per_s")
        if e0 == e1:
            raise ParameterError(f"{where}: from_V_per_um and to_V_per_um are equal ({e0:g}); use a constant field")
        d = abs(e1 - e0) / r
        _duration(d, f"{where}: duration |to - from| / rate")
        return cls(segments=((0.0, d, e0, e1),), total_duration_s=d, kind="ramp", ramp_step_s=ramp_step_s,
                   description=_json({"ramp": {"from_V_per_um": e0, "to_V_per_um": e1, "rate_V_per_um_per_s": r}}))

    @classmethod
    def triangle(cls, amplitude_V_per_um: float, rate_V_per_um_per_s: float, cycles: int,
                 offset_V_per_um: float = 0.0, ramp_step_s: float | None = None, *,
                 where: str = "triangle") -> "BiasProtocol":
        """``cycles`` of offset -> offset + A -> offset - A -> offset at the sweep rate |rate|
        (period 4 |A| / rate)."""
        a = _field(amplitude_V_per_um, f"{where}.amplitude_V_per_um")
        o = _field(offset_V_per_um, f"{where}.offset_V_per_um")
        r = _rate(rate_V_per_um_per_s, f"{where}.rate_V_per_um_per_s")
        n = _count(cycles, f"{where}.cycles")
        if a == 0.0:
            raise ParameterError(f"{where}.amplitude_V_per_um must not be 0 (a triangle of zero amplitude is a "
                                 "constant field)")
        _field(o + a, f"{where}: offset + amplitude")
        _field(o - a, f"{where}: offset - amplitude")
        q = abs(a) / r
        _check_total(4 * q * n, where)
        segs = []
        for k in range(n):
            t = 4 * q * k
            segs += [(t, t + q, o, o + a), (t + q, t + 3 * q, o + a, o - a), (t + 3 * q, t + 4 * q, o - a, o)]
        return cls(segments=tuple(segs), total_duration_s=4 * q * n, kind="triangle", ramp_step_s=ramp_step_s,
                   description=_json({"triangle": {"amplitude_V_per_um": a, "rate_V_per_um_per_s": r,
                                                   "cycles": n, "offset_V_per_um": o}}))

    @classmethod
    def from_callable(cls, f: Callable[[float], float], duration_s: float, switch_times: Sequence[float] = (),
                      piecewise_constant: bool = False, ramp_step_s: float | None = None) -> "BiasProtocol":
        """E(t) = f(t) (V/um) on [0, duration_s], for library users.

        switch_times: the times in (0, duration_s) where f jumps or kinks (the continuum restarts
        its integrator there); piecewise_constant: f is constant between them (then
        :meth:`piecewise_constant` samples it once per interval, at the midpoint).  f is
        evaluated at t = 0 and at the end to check that it returns a plausible field."""
        if not callable(f):
            raise ParameterError(f"from_callable: f must be callable, got {f!r}")
        d = _duration(duration_s, "duration_s")
        ts = tuple(sorted(float(_number(t, "switch_times")) for t in switch_times))
        for t in ts:
            if not 0.0 < t < d:
                raise ParameterError(f"switch_times: {t:g} s is not inside (0, {d:g}) s")
        for t in (0.0, d):
            _field(f(t), f"f({t:g} s)")
        return cls(segments=(), total_duration_s=d, kind="callable", ramp_step_s=ramp_step_s, function=f,
                   callable_switch_times=ts, callable_piecewise_constant=bool(piecewise_constant),
                   description=_json({"callable": getattr(f, "__name__", repr(f)), "duration_s": d,
                                      "switch_times": list(ts)}))

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, where: str = "[bias]") -> "BiasProtocol":
        """A protocol from a ``[bias]`` table (module docstring); one ParameterError naming the
        key for anything unknown, missing, repeated or out of range."""
        w = where.strip("[]") or "bias"
        if not isinstance(table, Mapping):
            raise ParameterError(f"{w}: expected a table, got {table!r}")
        unknown = sorted(set(table) - set(_TOP_KEYS))
        if unknown:
            raise ParameterError(f"unknown key {w}.{unknown[0]} (allowed in [{w}]: {', '.join(_TOP_KEYS)})")
        forms = [k for k in FORMS if k in table]
        if len(forms) != 1:
            raise ParameterError(f"[{w}] must give exactly one of {', '.join(FORMS)}; got "
                                 f"{', '.join(forms) if forms else 'none'}")
        form = forms[0]
        step = table.get("ramp_step_s")
        if step is not None:
            step = _duration(step, f"{w}.ramp_step_s")
        if "duration_s" in table and form != "field_V_per_um":
            raise ParameterError(f"{w}.duration_s is only for a constant field; the duration of {form} follows "
                                 "from its own entries")
        ww = f"{w}.{form}"
        if form == "field_V_per_um":
            e = _field(table["field_V_per_um"], f"{w}.field_V_per_um")
            d = table.get("duration_s")
            if d is not None:
                d = _duration(d, f"{w}.duration_s")
            return cls.constant(e, d, ramp_step_s=step)
        if form == "steps":
            return cls.steps(table["steps"], ramp_step_s=step, where=ww)
        if form == "square_wave":
            t = _table(table[form], ww, ("amplitude_V_per_um", "period_s", "cycles"), ("offset_V_per_um", "duty"))
            return cls.square_wave(ramp_step_s=step, where=ww, **t)
        if form == "ramp":
            t = _table(table[form], ww, ("from_V_per_um", "to_V_per_um", "rate_V_per_um_per_s"))
            return cls.ramp(ramp_step_s=step, where=ww, **t)
        t = _table(table[form], ww, ("amplitude_V_per_um", "rate_V_per_um_per_s", "cycles"), ("offset_V_per_um",))
        return cls.triangle(ramp_step_s=step, where=ww, **t)

    def with_duration(self, duration_s: float) -> "BiasProtocol":
        """A constant protocol with no duration, given one (others: returned if equal, else an error)."""
        d = _duration(duration_s, "duration_s")
        if self.total_duration_s is None:
            return BiasProtocol.constant(self._constant_value(), d, ramp_step_s=self.ramp_step_s)
        if not math.isclose(self.total_duration_s, d, rel_tol=1e-12):
            raise ParameterError(f"duration_s = {d:g} s conflicts with the bias protocol's own duration "
                                 f"{self.total_duration_s:g} s")
        return self

    # ----------------------------------------------------------------------------------------
    # queries
    # ----------------------------------------------------------------------------------------
    def _constant_value(self) -> float:
        return float(json.loads(self.description)["_constant"])

    def _check_time(self, t_s: float) -> float:
        t = float(t_s)
        if not math.isfinite(t) or t < 0.0 or (self.total_duration_s is not None
                                               and t > self.total_duration_s * (1 + 1e-12)):
            raise ParameterError(f"t = {t!r} s is outside the bias protocol [0, {self.total_duration_s}] s")
        return t

    def field_at(self, t_s: float) -> float:
        """The field at time t_s (V/um, signed; right-continuous at a switch)."""
        t = self._check_time(t_s)
        if self.function is not None:
            return float(self.function(t))
        if not self.segments:
            return self._constant_value()
        i = self._segment_index(t)
        t0, t1, e0, e1 = self.segments[i]
        if e0 == e1:
            return e0
        return e0 + (e1 - e0) * (min(t, t1) - t0) / (t1 - t0)

    def _segment_index(self, t: float) -> int:
        segs = self.segments
        lo, hi = 0, len(segs) - 1
        while lo < hi:  # the last segment whose start is <= t
            mid = (lo + hi + 1) // 2
            if segs[mid][0] <= t:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def segment_at(self, t_s: float) -> Segment:
        """The segment (t0, t1, E0, E1) holding t_s (right-continuous); callables: not defined."""
        if self.function is not None or not self.segments:
            raise ParameterError("segment_at: this protocol has no segments (a callable or an open constant)")
        return self.segments[self._segment_index(self._check_time(t_s))]

    def switch_times(self) -> tuple[float, ...]:
        """The interior segment boundaries (s), sorted (module docstring)."""
        if self.function is not None:
            return self.callable_switch_times
        return tuple(s[0] for s in self.segments[1:])

    def is_piecewise_constant(self) -> bool:
        """True if the field is constant between switch times (no ramps)."""
        if self.function is not None:
            return self.callable_piecewise_constant
        return all(e0 == e1 for _, _, e0, e1 in self.segments)

    def intervals(self) -> list[tuple[float, float]]:
        """[(t_start_s, t_end_s)] between consecutive switch times (an open constant: [(0, inf)])."""
        if self.total_duration_s is None:
            return [(0.0, math.inf)]
        edges = (0.0,) + self.switch_times() + (self.total_duration_s,)
        return list(zip(edges[:-1], edges[1:]))

    def piecewise_constant(self, max_step_s: float | None = None) -> list[tuple[float, float, float]]:
        """[(t_start_s, t_end_s, field_V_per_um)] tiling the protocol (module docstring: exact for
        steps and waves; ramps cut into steps of at most max_step_s, default ``ramp_step_s``, each
        with its midpoint field).  An open constant gives [(0, inf, E)]."""
        if self.total_duration_s is None:
            return [(0.0, math.inf, self._constant_value())]
        if max_step_s is not None:
            max_step_s = _duration(max_step_s, "max_step_s")
        step = max_step_s if max_step_s is not None else self.ramp_step_s
        out = []
        for t0, t1 in self.intervals():
            if self.function is not None:
                constant = self.callable_piecewise_constant
            else:
                s = self.segment_at(t0)
                constant = s[2] == s[3]
            if constant:
                out.append((t0, t1, self.field_at(0.5 * (t0 + t1))))
                continue
            if step is None:
                raise ParameterError("this bias protocol has ramps: give max_step_s (or [bias] ramp_step_s), the "
                                     "length of the steps that approximate them")
            n = max(1, math.ceil((t1 - t0) / step * (1 - 1e-12)))
            for k in range(n):
                a, b = t0 + (t1 - t0) * k / n, t0 + (t1 - t0) * (k + 1) / n
                out.append((a, b, self.field_at(0.5 * (a + b))))
        return out

    def positive_electrode(self, t_s: float) -> str | None:
        """"left" (forward bias: the Br-side contact is at the higher potential), "right"
        (reverse bias) or None (rest) at time t_s."""
        e = self.field_at(t_s)
        return "left" if e > 0 else ("right" if e < 0 else None)

    def field_integral(self, t0_s: float, t1_s: float) -> float:
        """The integral of E dt over [t0_s, t1_s] (V s/um); exact for segments, for a callable
        by Simpson's rule on each interval between switch times (64 panels)."""
        a, b = self._check_time(t0_s), self._check_time(t1_s)
        if b < a:
            raise ParameterError(f"field_integral: t1 = {b:g} s < t0 = {a:g} s")
        if self.total_duration_s is None:
            return self._constant_value() * (b - a)
        total = 0.0
        if self.function is None:
            for t0, t1, e0, e1 in self.segments:
                lo, hi = max(a, t0), min(b, t1)
                if hi > lo:
                    f_lo = e0 + (e1 - e0) * (lo - t0) / (t1 - t0)
                    f_hi = e0 + (e1 - e0) * (hi - t0) / (t1 - t0)
                    total += 0.5 * (f_lo + f_hi) * (hi - lo)
            return total
        for s0, s1 in self.intervals():
            lo, hi = max(a, s0), min(b, s1)
            if hi > lo:
                n = 64
                h = (hi - lo) / n
                ys = [float(self.function(lo + k * h)) for k in range(n + 1)]
                total += h / 3 * (ys[0] + ys[-1] + 4 * sum(ys[1:-1:2]) + 2 * sum(ys[2:-1:2]))
        return total

    def max_abs_field(self) -> float:
        """The largest |E| of the protocol (V/um; for a callable: sampled at 1001 points and the
        switch times)."""
        if self.total_duration_s is None:
            return abs(self._constant_value())
        if self.function is None:
            return max(max(abs(s[2]), abs(s[3])) for s in self.segments)
        d = self.total_duration_s
        ts = [d * k / 1000 for k in range(1001)] + list(self.callable_switch_times)
        return max(abs(float(self.function(t))) for t in ts)

    def to_mapping(self) -> dict:
        """The ``[bias]`` table this protocol was built from (plus ramp_step_s); JSON-able.  A
        callable gives {"callable": name, "duration_s", "switch_times"} (not loadable)."""
        d = {k: v for k, v in json.loads(self.description).items() if not k.startswith("_")}
        if self.ramp_step_s is not None:
            d["ramp_step_s"] = self.ramp_step_s
        return d

    def __repr__(self) -> str:
        return f"BiasProtocol({self.kind}, {self.to_mapping()!r})"


def _json(d: Mapping[str, Any]) -> str:
    return json.dumps(d, sort_keys=True)


def _rate(value: Any, where: str) -> float:
    r = abs(_number(value, where))
    if r == 0.0:
        raise ParameterError(f"{where} must not be 0")
    return r


def _check_total(t: float, where: str) -> None:
    if not t <= MAX_DURATION_S:
        raise ParameterError(f"{where}: total duration {t:g} s exceeds {MAX_DURATION_S:.3g} s")


# --------------------------------------------------------------------------------------------
# configs: [bias] or the old-style constant field
# --------------------------------------------------------------------------------------------
def _lookup(data: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def resolve_bias(data: Mapping[str, Any], *, field_keys: Sequence[str] = ("field_V_per_um",),
                 duration_keys: Sequence[str] = ("duration_s",), default_field_V_per_um: float | None = None,
                 default_duration_s: float | None = None, bias_key: str = "bias"
                 ) -> tuple[BiasProtocol | None, dict]:
    """One protocol from a config mapping holding a ``[bias]`` table and/or an old-style field.

    field_keys / duration_keys: the dotted paths of the config's old-style constant field and
    duration (e.g. ``"kmc.field_V_per_um"``, ``"sweep.field_V_per_um"``, ``"duration_s"``).
    Returns ``(protocol, rest)``: ``rest`` is ``data`` without the ``[bias]`` table.
    - ``[bias]`` and any old-style key at once: one ParameterError naming both;
    - ``[bias]`` only: :meth:`BiasProtocol.from_mapping`; a constant field without its own
      duration takes ``default_duration_s`` if given;
    - no ``[bias]``: a constant protocol from the first old-style field found (a number) or
      ``default_field_V_per_um``, for the first old-style duration found or
      ``default_duration_s``; None if there is no field at all (or the field is a list, a sweep).
    """
    if not isinstance(data, Mapping):
        raise ParameterError(f"expected a config table, got {data!r}")
    rest = {k: v for k, v in data.items() if k != bias_key}
    found_fields = [k for k in field_keys if _lookup(data, k)[0]]
    found_durations = [k for k in duration_keys if _lookup(data, k)[0]]
    if bias_key in data:
        old = found_fields + found_durations
        if old:
            raise ParameterError(f"the config gives both [{bias_key}] and the old-style {old[0]}: give the bias "
                                 f"in one place ([{bias_key}] holds the field and the duration)")
        protocol = BiasProtocol.from_mapping(data[bias_key], where=f"[{bias_key}]")
        if protocol.total_duration_s is None and default_duration_s is not None:
            protocol = protocol.with_duration(default_duration_s)
        return protocol, rest
    e: Any = default_field_V_per_um
    if found_fields:
        e = _lookup(data, found_fields[0])[1]
        if isinstance(e, (list, tuple)):
            return None, rest
        e = _field(e, found_fields[0])
    if e is None:
        return None, rest
    d: Any = default_duration_s
    if found_durations:
        d = _duration(_lookup(data, found_durations[0])[1], found_durations[0])
    return BiasProtocol.constant(e, d), rest
