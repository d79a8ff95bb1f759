"""The run-type interface of campaigns (``ionwire campaign``) and the shared sweep grammar.

A *run type* (usually a class with static methods) satisfies :class:`RunType`::

    name: str                                   a short name (messages, progress bar)
    load(mapping) -> config                     validate the TOML mapping (without its top-level
                                                ``run`` key) into a frozen config; bad input raises
                                                ParameterError naming the key
    expand(config) -> list[dict]                one JSON-able point per run (e.g.
                                                {"field_V_per_um": 2.0}); order = presentation order
    run(config, point, outdir) -> dict          one run; a JSON-able result; may write files into
                                                ``outdir`` (a fresh folder that becomes
                                                OUT/runs/<id>/ once ``run`` returns; paths in the
                                                result are relative to it)
    reduce(config, points, results, outdir)     the campaign summary (JSON-able dict) from all
                                                results in expand order; may write figures/data
                                                into ``outdir`` (the campaign folder); an
                                                optional "headline" string in it is printed
  optional (:class:`PreparedRunType`, :class:`FingerprintedRunType`):
    prepare(config) -> dict                     once per campaign, before any run (e.g. the
                                                continuum calibration fit); JSON-able; cached and
                                                reused on ``--resume``
    bind(config, prepared) -> config            required with ``prepare``: the config the runs and
                                                ``reduce`` see (e.g. with the fitted rates filled in)
    fingerprint(config) -> mapping              the parameters that identify a run besides its
                                                point (default: ``to_mapping(config)`` without its
                                                ``sweep``); part of every run id

Runs execute in other processes, so the run type and the config must pickle (module-level classes
and frozen dataclasses do) and ``run`` must not rely on state set up in the parent process.

:func:`sweep_points` is the shared sweep grammar; a run type's ``expand`` usually just calls it::

    [sweep]
    field_V_per_um = [-4.0, -3.5, 4.0]  # every list is an axis; a scalar is a one-value axis
    x_cl = [0.2, 0.5]
    combine = "product"                 # "product" (default: all combinations) or "zip"
    replicas = 4                        # optional: every point repeated, with "replica" = 0..3
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from .errors import ParameterError


@runtime_checkable
class RunType(Protocol):
    """What a campaign fans out (see the module docstring)."""

    name: str

    def load(self, mapping: Mapping[str, Any]) -> Any: ...

    def expand(self, config: Any) -> list[dict]: ...

    def run(self, config: Any, point: Mapping[str, Any], outdir: Any) -> dict: ...

    def reduce(self, config: Any, points: list[dict], results: list[dict], outdir: Any) -> dict: ...


@runtime_checkable
class PreparedRunType(RunType, Protocol):
    """A run type with a once-per-campaign step whose result the runs see through ``bind``."""

    def prepare(self, config: Any) -> dict: ...

    def bind(self, config: Any, prepared: Mapping[str, Any]) -> Any: ...


@runtime_checkable
class FingerprintedRunType(RunType, Protocol):
    """A run type that names the parameters identifying its runs itself."""

    def fingerprint(self, config: Any) -> Any: ...


#: the methods every run type has (:class:`RunType`)
REQUIRED_METHODS = ("load", "expand", "run", "reduce")


# --------------------------------------------------------------------------------------------
# the sweep grammar
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One sweepable parameter: its type, allowed range (inclusive) or choices, and unit."""

    kind: type = float
    low: float | None = None
    high: float | None = None
    unit: str = ""
    choices: tuple | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(repr, self.choices))
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"in [{self.low:g}, {self.high:g}]{unit}"
        if self.low is not None:
            return f">= {self.low:g}{unit}"
        if self.high is not None:
            return f"<= {self.high:g}{unit}"
        return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}[self.kind]

    def check(self, value: Any, where: str) -> Any:
        """The validated value (ints become floats on float axes) or ParameterError."""
        bad = ParameterError(f"{where}: must be {self.describe()}, got {value!r}")
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad
            value = float(value)
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
        elif not isinstance(value, self.kind):
            raise bad
        if self.choices is not None and value not in self.choices:
            raise bad
        if self.low is not None and value < self.low:
            raise bad
        if self.high is not None and value > self.high:
            raise bad
        return value


SWEEP_OPTIONS = ("combine", "replicas")
MAX_REPLICAS = 100_000


def sweep_points(sweep: Mapping[str, Any] | None, axes: Mapping[str, Axis],
                 where: str = "sweep", required: Sequence[str] = (),
                 renamed: Mapping[str, str] | None = None) -> list[dict]:
    """Expand a ``[sweep]`` table into point dicts (see the module docstring for the grammar).

    ``axes`` declares which keys may be swept and their ranges; unknown keys, empty or duplicate
    lists, values out of range and zip axes of unequal length raise ParameterError naming the key
    (``renamed``: old key -> the axis that replaced it, named in the error).  An empty/missing
    sweep gives one point ``{}`` (a single run).
    """
    if sweep is None:
        sweep = {}
    if not isinstance(sweep, Mapping):
        raise ParameterError(f"{where}: expected a table, got {sweep!r}")
    allowed = list(axes) + list(SWEEP_OPTIONS)
    for key in sweep:
        if renamed and key in renamed:
            raise ParameterError(f"{where}.{key}: renamed {where}.{renamed[key]}")
        if key not in allowed:
            raise ParameterError(f"unknown key {where}.{key} (allowed in [{where}]: {', '.join(allowed)})")
    for key in required:
        if key not in sweep:
            raise ParameterError(f"{where}.{key}: missing (a list of values, {axes[key].describe()})")
    combine = sweep.get("combine", "product")
    if combine not in ("product", "zip"):
        raise ParameterError(f"{where}.combine: must be 'product' or 'zip', got {combine!r}")
    replicas = sweep.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise ParameterError(f"{where}.replicas: must be an integer in [1, {MAX_REPLICAS}], got {replicas!r}")

    names, values = [], []
    for key, raw in sweep.items():
        if key in SWEEP_OPTIONS:
            continue
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise ParameterError(f"{where}.{key}: empty list (give at least one value, {axes[key].describe()})")
        checked = [axes[key].check(v, f"{where}.{key}[{i}]" if isinstance(raw, list) else f"{where}.{key}")
                   for i, v in enumerate(items)]
        seen = set()
        for i, v in enumerate(checked):
            if v in seen:
                raise ParameterError(f"{where}.{key}[{i}]: duplicate value {v!r} (runs would repeat)")
            seen.add(v)
        names.append(key)
        values.append(checked)

    if combine == "zip" and values:
        lengths = {len(v) for v in values}
        if len(lengths) > 1:
            detail = ", ".join(f"{n}: {len(v)}" for n, v in zip(names, values))
            raise ParameterError(f"{where}: combine = 'zip' needs lists of equal length ({detail})")
        combos = list(zip(*values))
    else:
        combos = list(itertools.product(*values))
    points = [dict(zip(names, combo)) for combo in combos]
    if combine == "zip" and len({tuple(p.items()) for p in points}) != len(points):
        raise ParameterError(f"{where}: combine = 'zip' gives duplicate points")
    if "replicas" in sweep:
        points = [{**p, "replica": r} for p in points for r in range(replicas)]
    return points
