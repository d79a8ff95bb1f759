"""Device kMC: a biased CsPbBr3 | CsPbCl3 wire between two electrodes (docs/model.md sections 3-5, 7, 8).

The wire is an nx x ny x nz anion sublattice (x, y periodic; z bounded, no flux through the ends)
laid out along z exactly like the continuum model's :class:`ionwire.structures.parameters.Geometry`
(anion plane p at z_p = p a/2; wire length -> nz = round(L / a)):

- Br segment for z_p < junction, Cl segment beyond; each plane's vacancies are drawn at its
  segment's x_V^eq (``Vacancies.equilibrium_fraction``) -- a binomial count per plane, sites
  uniformly without replacement -- and that initial count is the plane's fixed background charge;
- plane p stands for the slab [z_p, z_p + a/2] (the continuum's slab of the same volume, the
  identification coupling.compare uses); contact planes are those whose slab lies in a contact
  region: left l0 <= z_p < l1, right r0 <= z_p < r1 (``contacts_um``), so each contact holds
  exactly its width / (a/2) planes, the continuum's contact volume;
- the bias: phi = V on the left imposed plane, 0 on the right one; the imposed planes are the
  contact planes whose slabs are nearest to ``imposed_positions_um`` (the OUTER contact edges by
  default), and V = field * (distance between the two planes), so that the kMC's potential on
  plane p is the continuum's at the slab centre z_p + a/4 (the continuum's ``applied_voltage_V``
  spans the slab edges, one plane spacing more);
- electrostatics exact after every event (:mod:`ionwire.kmc.electrostatics`);
- electrode reactions on contact planes with rates from the shared
  :func:`ionwire.structures.parameters.electrode_rates` (the left contact is the "positive" electrode for
  field > 0): a halide leaves a contact site at r_c(x_Cl(p)), a contact vacancy is refilled at
  r_d(x_Cl(p)) by Br or Cl with the plane's halide composition; x_Cl(p) is the Cl fraction of the
  halides on the plane; the rate laws are tabulated on 4097 x_Cl points and interpolated
  linearly (relative error < 1e-7 for the default log-linear law).

Bias protocols ([bias], :mod:`ionwire.structures.bias`; :func:`bias_segments`): the field is
piecewise constant in time.  Within a segment nothing differs from a constant field.  At a
switch the imposed potential, the uniform-field hop multipliers, the electrode roles (the left
contact is positive for E >= 0, the right one for E < 0) and the electrode rate tables (r_c ~
|E|) take the new field, the reaction rates of the contact planes and the sum tree are
recomputed from the integer state, and the pending next-event time, drawn with the old total
rate, is discarded and drawn anew with the new one (one uniform of the kMC stream).  This is
exact for the Poisson process of the kMC: the waiting time is memoryless, so after the switch it
is exponential with the new total rate.  A continuously varying protocol (ramp, triangle,
callable) is run as steps of at most [bias] ramp_step_s, each at the protocol's field at its
midpoint; the result converges as ramp_step_s shrinks (tests/test_device_bias.py).  A state
exactly at a switch time is in the segment that ends there; checkpoints record the segment
(``bias_segment``), so a restart in the middle of a protocol is bit-identical.  Seed streams: a
protocol and a constant field of the same seed are identical event for event up to the first
switch, and differ (equal in distribution) afterwards.  The trajectory of a run with [bias]
holds its time series (:data:`ionwire.kmc.h5md.PROTOCOL_SERIES`, :class:`ProtocolSeries`); a
run without [bias] writes exactly the files it always did.

State memory: occupancy 1 byte per site; everything else is O(planes + vacancies) (no per-site
tracer displacements in device mode; collective z displacements of each species are counted).

Python API
----------
- ``load_config(path_or_mapping) -> DeviceConfig``
- ``DeviceSimulation(config, seed=None)``: ``.advance(t_stop_s, max_events=None) -> status``,
  ``.profiles() -> dict``, ``.potential_V()``, ``.time_s``, ``.counters``, ``.occupancy``,
  ``.n_vacancies``, ``.state`` (:class:`ionwire.kmc.state.DeviceState`: the arrays, ``.nbytes``,
  ``.checkpoint()``), ``.state_arrays()``, ``DeviceSimulation.from_state(config, arrays)``.
- ``run_device(config, out_path, *, resume=False, checkpoint_every=None, overwrite=False,
  progress=None) -> dict``: the full run with H5MD output and checkpoints (the CLI's engine).
- ``simulate_profiles(config, times_s, seed=None) -> dict``: in-memory profiles at given times
  (for ensembles of replicas; no files).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time as _time
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ionwire.structures.parameters import (DeviceParameters, HoldsDeviceParameters, ParameterError, electrode_rates,
                                           from_mapping, inline_field, read_toml, require, to_mapping)
from ionwire.structures.lattice import AnionLattice
from ionwire.structures.units import ELEMENTARY_CHARGE_C

from . import _device_kernels as dk
from ._kernels import local_deltas, rate_table, rng_state_from_seed
from .electrostatics import PlaneElectrostatics, potential_from_bonds
from .h5md import (PROTOCOL_SERIES, TrajectoryError, TrajectoryWriter, checkpoint_path, open_trajectory,
                   observable_names, read_checkpoint, write_checkpoint)
from .state import DeviceState

COUNTER_NAMES = dk.COUNTER_NAMES  # for the default pair (Br, Cl); see counter_names


def relabel(name: str, halides: tuple[str, str]) -> str:
    """A counter or column name of the kernels (written with Br, Cl for the first and the second
    halide) for the pair ``halides``: hops_Br -> hops_<A>, refilled_left_Cl -> refilled_left_<B>."""
    import re

    return re.sub(r"_(Br|Cl)(?=_|$)", lambda m: "_" + halides[0 if m[1] == "Br" else 1], name)


def counter_names(halides: tuple[str, str]) -> tuple[str, ...]:
    """The event counters of a run of the pair ``halides`` (``COUNTER_NAMES`` relabelled)."""
    return tuple(relabel(n, halides) for n in dk.COUNTER_NAMES)


def exchange_names(halides: tuple[str, str]) -> tuple[str, ...]:
    """The columns of the halide_exchange series for the pair ``halides``."""
    return tuple(relabel(n, halides) for n in dk.EXCHANGE_NAMES)
RATE_GRID = 4096


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KMCSettings:
    """[kmc]: lattice cross-section, bias and run length of the device kMC.

    nx, ny: cells across the wire (x, y periodic); field_V_per_um: the applied (nominal) field,
    positive = forward (higher potential on the Br-side contact); duration_s: simulated time;
    seed: the random seed (initial state and kMC stream); hops: false freezes all hops (only the
    electrode reactions act); max_events: stop after this many events (0: no limit);
    background: the initial vacancies per plane, which are also the plane's fixed background
    charge: "binomial" (default) draws them from Binomial(sites, x_V^eq), independently per plane;
    "uniform" takes the deterministic counts of :func:`uniform_background` (the expected
    x_V^eq sites rounded so that the cumulative count from the left end never differs from the
    cumulative expectation by more than 1/2: the nearest integer charges to the continuum's smooth
    background; the potential follows the cumulative charge).

    With a [bias] table (:mod:`ionwire.structures.bias`) the field and the duration are the
    protocol's: field_V_per_um and duration_s must then be absent.
    """

    nx: int = 8
    ny: int = 8
    field_V_per_um: float = 0.0
    duration_s: float = 1e-7
    seed: int = 0
    hops: bool = True
    max_events: int = 0
    background: typing.Literal["binomial", "uniform"] = "binomial"

    def __post_init__(self):
        require(self.background in ("binomial", "uniform"),
                f"background must be 'binomial' or 'uniform', got {self.background!r}")
        require(self.nx >= 2 and self.ny >= 2, f"nx and ny must be >= 2, got {self.nx} x {self.ny}")
        require(math.isfinite(self.field_V_per_um), f"field_V_per_um must be finite, got {self.field_V_per_um!r}")
        require(math.isfinite(self.duration_s) and self.duration_s > 0,
                f"duration_s must be a positive number, got {self.duration_s!r}")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        require(self.max_events >= 0, f"max_events must be >= 0, got {self.max_events}")


@dataclass(frozen=True)
class OutputSettings:
    """[output]: frames every frame_interval_s (from t = 0 to duration_s); species: write the
    per-site species of every frame (false: per-plane observables only)."""

    frame_interval_s: float = 1e-8
    species: bool = True

    def __post_init__(self):
        require(math.isfinite(self.frame_interval_s) and self.frame_interval_s > 0,
                f"frame_interval_s must be a positive number, got {self.frame_interval_s!r}")


@dataclass(frozen=True)
class DeviceConfig(HoldsDeviceParameters):
    """A device kMC run: the shared physical parameters (``params``; the file's [material],
    [vacancies], [geometry], [electrodes]) + [kmc] + [output]."""

    params: DeviceParameters = inline_field(DeviceParameters)
    run: typing.Literal["device"] = "device"
    kmc: KMCSettings = field(default_factory=KMCSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    #: no [bias] protocol: the constant kmc.field_V_per_um (a class attribute, not a field, so a
    #: config without [bias] has the fields, mapping and fingerprint it always had; a config
    #: with [bias] is a :class:`BiasedDeviceConfig`, see :func:`with_bias`)
    bias = None

    def __post_init__(self):
        n = self.kmc.duration_s / self.output.frame_interval_s
        require(n <= 1e6, f"output.frame_interval_s gives {n:.3g} frames (more than 1e6)")

    def to_mapping(self) -> dict:
        return to_mapping(self)


@dataclass(frozen=True)
class BiasedDeviceConfig(DeviceConfig):
    """A device run under a [bias] protocol (:class:`ionwire.structures.bias.BiasProtocol` with a
    total duration, which is kmc.duration_s; kmc.field_V_per_um is not used)."""

    bias: Any = None

    def __post_init__(self):
        super().__post_init__()
        require(hasattr(self.bias, "piecewise_constant"),
                f"bias must be an ionwire.structures.bias.BiasProtocol, got {self.bias!r}")
        require(self.bias.total_duration_s is not None, "the [bias] protocol needs a duration ([bias] duration_s)")
        require(self.bias.is_piecewise_constant() or self.bias.ramp_step_s is not None,
                "the [bias] protocol varies continuously: give [bias] ramp_step_s, the length of the "
                "constant steps the kMC takes for it")

    def to_mapping(self) -> dict:
        """The config as its file's tables: the [bias] table and no kmc.field_V_per_um or
        kmc.duration_s (the protocol holds them), so that :func:`load_config` reads it back."""
        m = to_mapping(self)
        m["bias"] = self.bias.to_mapping()
        del m["kmc"]["field_V_per_um"], m["kmc"]["duration_s"]
        return m


def with_bias(config: DeviceConfig, protocol) -> BiasedDeviceConfig:
    """``config`` under the bias protocol ``protocol`` (None: ``config`` without one)."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(DeviceConfig)}
    if protocol is None:
        return DeviceConfig(**fields)
    return BiasedDeviceConfig(**fields, bias=protocol)


def load_config(source: str | os.PathLike | Mapping[str, Any]) -> DeviceConfig:
    """A validated :class:`DeviceConfig` from a TOML file path or a mapping (unknown keys raise).

    A [bias] table (:mod:`ionwire.structures.bias`) sets the field and the duration of the run:
    together with kmc.field_V_per_um or kmc.duration_s it is one error; a constant [bias]
    field needs its duration_s."""
    from ionwire.structures.bias import resolve_bias

    mapping = source if isinstance(source, Mapping) else read_toml(source)[0]
    if "bias" not in mapping:
        return from_mapping(DeviceConfig, mapping)
    protocol, rest = resolve_bias(mapping, field_keys=("kmc.field_V_per_um",), duration_keys=("kmc.duration_s",))
    if protocol.total_duration_s is None:
        raise ParameterError("[bias] field_V_per_um: a device run needs the duration too ([bias] duration_s)")
    kmc = rest.get("kmc") or {}
    if not isinstance(kmc, Mapping):
        raise ParameterError(f"kmc: expected a table, got {kmc!r}")
    rest["kmc"] = dict(kmc, duration_s=float(protocol.total_duration_s))
    return with_bias(from_mapping(DeviceConfig, rest), protocol)


def bias_segments(config: DeviceConfig, open_end: bool = False) -> tuple[tuple[float, float, float], ...]:
    """The bias of a run as piecewise-constant segments ((t_start_s, t_end_s, field_V_per_um), ...)
    from t = 0, contiguous, to kmc.duration_s.

    Without [bias]: one segment of kmc.field_V_per_um.  A piecewise-constant protocol (steps,
    rest, square waves) gives its own segments, exactly; a continuously varying one (ramp,
    triangle, callable) gives the protocol's ``piecewise_constant()``: steps of at most its
    ramp_step_s, each with the protocol's field at the step's midpoint
    (:mod:`ionwire.structures.bias`), which converge to the protocol as ramp_step_s shrinks.
    Segments of zero length are dropped.  ``open_end``: the last segment lasts for ever (t_end_s
    = inf: the field after the end of the run or the protocol is the last one; the engine runs
    past duration_s only when asked to)."""
    duration = float(config.kmc.duration_s)
    if config.bias is None:
        segs = [(0.0, duration, float(config.kmc.field_V_per_um))]
    else:
        raw = config.bias.piecewise_constant()
        segs = [(float(t0), float(t1), float(E)) for t0, t1, E in raw if t1 > t0]
        if not segs:
            raise ParameterError("the [bias] protocol has no segment of nonzero length")
        if segs[0][0] != 0.0 or any(b[0] != a[1] for a, b in zip(segs[:-1], segs[1:])):
            raise ParameterError("the [bias] protocol's segments must be contiguous from t = 0")
        if not all(math.isfinite(E) for _, _, E in segs):
            raise ParameterError("the [bias] protocol gives a non-finite field")
    if open_end:
        segs[-1] = (segs[-1][0], math.inf, segs[-1][2])
    return tuple(segs)


def segment_index(segments, t_s: float) -> int:
    """The segment a state at time t_s is in: the one with t_start < t_s <= t_end (the first at
    t_s = 0; see :meth:`DeviceSimulation.advance`)."""
    for i, (t0, t1, _) in enumerate(segments):
        if t_s <= t1:
            return i
    return len(segments) - 1


def replace_settings(config: DeviceConfig, **kmc_changes) -> DeviceConfig:
    """A copy of ``config`` with [kmc] fields changed (e.g. seed, field_V_per_um)."""
    import dataclasses
    return dataclasses.replace(config, kmc=dataclasses.replace(config.kmc, **kmc_changes))


# ---------------------------------------------------------------------------------------------
# layout: geometry (um) -> planes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceLayout:
    """The wire discretised on anion planes (arrays of length P = 2 nz)."""

    lattice: AnionLattice
    electrostatics: PlaneElectrostatics
    plane_z_um: np.ndarray
    contact: np.ndarray          # int8[P]: 0 none, 1 left contact, 2 right contact
    x_cl_initial: np.ndarray     # float64[P]: 0 (Br segment) or 1 (Cl segment)
    x_v_eq: np.ndarray           # float64[P]: initial vacancy site fraction of each plane
    sites_per_plane: np.ndarray  # int64[P]
    field_V_per_um: float
    electrode_of_side: tuple[str, str]  # electrode name of the left / right contact


def device_layout(config: DeviceConfig, field_V_per_um: float | None = None) -> DeviceLayout:
    """The planes, contacts and electrostatics of ``config`` under the field ``field_V_per_um``
    (default: the field at t = 0, :func:`bias_segments`)."""
    mat, geo, k = config.material, config.geometry, config.kmc
    E = float(bias_segments(config)[0][2] if field_V_per_um is None else field_V_per_um)
    a = mat.lattice_constant_A
    h_um = 0.5 * a * 1e-4
    nz = int(round(geo.wire_length_um / (a * 1e-4)))
    if nz < 2:
        raise ParameterError(f"geometry.wire_length_um ({geo.wire_length_um}) is shorter than two cells "
                             f"({2 * a * 1e-4:.2e} um)")
    lat = AnionLattice(k.nx, k.ny, nz, periodic_z=False, lattice_constant_A=a)
    P = lat.n_planes
    z = h_um * np.arange(P)
    tol = 1e-9
    (l0, l1), (r0, r1) = geo.contacts_um()
    contact = np.zeros(P, dtype=np.int8)
    # plane p stands for the slab [z_p, z_p + a/2]: a contact holds the planes whose slab lies in it
    contact[(z >= l0 - tol) & (z < l1 - tol)] = 1
    contact[(z >= r0 - tol) & (z < r1 - tol)] = 2
    if not (contact == 1).any() or not (contact == 2).any():
        raise ParameterError("geometry.contact_width_um is thinner than one anion plane of the kMC lattice")
    zl, zr = geo.imposed_positions_um()
    # the imposed planes: the contact planes whose slab is nearest to the imposed positions
    mid = z + 0.5 * h_um
    left_planes, right_planes = np.flatnonzero(contact == 1), np.flatnonzero(contact == 2)
    pa = int(left_planes[np.argmin(np.abs(mid[left_planes] - zl))])
    pb = int(right_planes[np.argmin(np.abs(mid[right_planes] - zr))])
    if not pa < pb:
        raise ParameterError("the two imposed-potential planes coincide on this lattice")
    # the drop between the imposed planes: the field times their distance, (b - a) a/2.  Plane p
    # stands for the slab [z_p, z_p + a/2], so its potential is the continuum's at the slab centre;
    # the continuum's drop between the two slab centres is field * (b - a) a/2 as well (its
    # applied_voltage_V spans the imposed positions, the outer slab EDGES, one plane more)
    V = E * (pb - pa) * h_um
    es = PlaneElectrostatics(n_planes=P, plane_spacing_A=0.5 * a, cross_section_A2=k.nx * k.ny * a * a,
                             relative_permittivity=mat.relative_permittivity, left_plane=pa, right_plane=pb,
                             potential_left_V=V, potential_right_V=0.0, temperature_K=mat.temperature_K)
    x_cl = np.where(z < geo.junction_um - tol, 0.0, 1.0)
    x_v = config.vacancies.equilibrium_fraction(mat, x_cl)
    return DeviceLayout(lat, es, z, contact, x_cl, np.asarray(x_v, dtype=float), lat.sites_per_plane(), E,
                        electrode_sides(E))


def electrode_sides(field_V_per_um: float) -> tuple[str, str]:
    """The electrode names ("positive" / "negative", :func:`ionwire.structures.parameters.electrode_rates`)
    of the left and the right contact under ``field_V_per_um``: the left one is positive for a
    forward field (> 0) and for zero field (no electrode reaction has a nonzero rate there, r_c ~
    |E|), the right one for a reverse field."""
    return ("positive", "negative") if field_V_per_um >= 0 else ("negative", "positive")


def layout_under_field(layout: DeviceLayout, field_V_per_um: float) -> DeviceLayout:
    """``layout`` with the bias changed to ``field_V_per_um``: the imposed potential of the left
    plane (the drop field x the distance of the imposed planes), the field and the electrode sides
    (the planes, contacts and composition do not depend on the bias)."""
    import dataclasses

    es = layout.electrostatics
    E = float(field_V_per_um)
    h_um = es.plane_spacing_A * 1e-4  # the same float as device_layout's h_um: the same V
    V = E * (es.right_plane - es.left_plane) * h_um
    return dataclasses.replace(layout, electrostatics=dataclasses.replace(es, potential_left_V=V),
                               field_V_per_um=E, electrode_of_side=electrode_sides(E))


def uniform_background(layout: DeviceLayout) -> np.ndarray:
    """int64[P]: deterministic vacancy counts per plane with cumulative sums round(sum_{m<=p}
    x_V^eq(m) sites(m)) (halves rounded up), so that every partial sum is within 1/2 of the
    continuum's smooth background over the same slabs (the ``background = "uniform"`` option)."""
    expected = np.cumsum(layout.x_v_eq * layout.sites_per_plane)
    cum = np.floor(expected + 0.5).astype(np.int64)
    return np.diff(np.concatenate(([0], cum)))


def plane_sites(lattice: AnionLattice, p: int) -> np.ndarray:
    """int64[n]: the site indices of anion plane p (in site order)."""
    k, odd = divmod(p, 2)
    per_k = 3 * lattice.nx * lattice.ny
    c = np.arange(lattice.nx * lattice.ny, dtype=np.int64)
    if odd:
        return k * per_k + 3 * c + 2
    return (k * per_k + 3 * c[:, None] + np.arange(2)[None, :]).ravel()


def rate_tables(config: DeviceConfig, layout: DeviceLayout) -> tuple[np.ndarray, np.ndarray]:
    """(rc_tab, rd_tab) float64[2, RATE_GRID + 1]: r_c, r_d (1/s) of the left / right contact on
    the grid x_Cl = i / RATE_GRID, from the shared ``electrode_rates``."""
    x = np.linspace(0.0, 1.0, RATE_GRID + 1)
    rc = np.zeros((2, RATE_GRID + 1))
    rd = np.zeros((2, RATE_GRID + 1))
    for side in range(2):
        c, d = electrode_rates(config.params, x, layout.field_V_per_um, layout.electrode_of_side[side])
        rc[side] = c
        rd[side] = d
    return rc, rd


# ---------------------------------------------------------------------------------------------
# the simulation object
# ---------------------------------------------------------------------------------------------
class DeviceSimulation:
    """State and engine of one device replica (see the module docstring).

    Attributes: ``lattice`` (AnionLattice, z bounded), ``layout`` (DeviceLayout), ``state``
    (:class:`ionwire.kmc.state.DeviceState`: every array the kernels update), ``occupancy``
    (uint8[n_sites]), ``background`` (int64[P] initial vacancies per plane), ``counters``
    (int64[len(COUNTER_NAMES)]), ``time_s``, ``n_vacancies``.  The run's constants are the
    kernel groups ``geometry``, ``field`` and ``rates``
    (:class:`ionwire.kmc._device_kernels.Geometry`, ``Field``, ``Rates``).
    """

    def __init__(self, config: DeviceConfig, seed: int | None = None, *, _state: dict | None = None):
        self.config = config
        self.seed = config.kmc.seed if seed is None else int(seed)
        #: the bias as piecewise-constant segments ((t_start_s, t_end_s, field_V_per_um), ...),
        #: the last one open-ended (t_end_s = inf): :func:`bias_segments`
        self.segments = bias_segments(config, open_end=True)
        segment = 0 if _state is None else int(np.asarray(_state.get("bias_segment", [0]))[0])
        if not 0 <= segment < len(self.segments):
            raise TrajectoryError(f"checkpoint bias segment {segment} is not one of the {len(self.segments)} "
                                  "segments of the config's bias protocol")
        self.layout = device_layout(config, self.segments[segment][2])
        self.lattice = lat = self.layout.lattice
        es = self.layout.electrostatics
        a, b = int(es.left_plane), int(es.right_plane)
        gamma = float(es.gamma)
        mat = config.material
        if config.kmc.hops:
            table = rate_table(mat.barriers.as_array(), mat.attempt_frequency_per_s, mat.kT_eV, 0.0)
        else:
            table = np.zeros((3, 5, 3))
        rc, rd = rate_tables(config, self.layout)
        self.rates = dk.Rates(hop=table, create=rc, refill=rd)
        self.geometry = dk.Geometry(nx=int(lat.nx), ny=int(lat.ny), nz=int(lat.nz), a=a, b=b,
                                    deltas=local_deltas(lat.nx, lat.ny),
                                    contact=self.layout.contact.astype(np.int64))
        # exp(gamma j / 2) and exp(gamma j / 2N) tables: bond factors and the uniform-field
        # multipliers become pure table lookups of the integer state (see _device_kernels)
        jmax = int(min(4096, 2 * dk.GAUGE_LIMIT / gamma))
        jb = np.arange(-jmax, jmax + 1)
        expt = np.exp(0.5 * gamma * jb)
        jmax = int(min(1 << 14, 2 * dk.GAUGE_LIMIT * (b - a) / gamma))
        jl = np.arange(-jmax, jmax + 1)
        expt_lam = np.exp(0.5 * gamma * jl / (b - a))
        self.field = self._field_group(self.layout, expt, expt_lam)
        if _state is None:
            self.state = DeviceState.from_checkpoint(lat, self._initial_state(), copy=False)
        else:
            self.state = DeviceState.from_checkpoint(lat, _state)
        self.state.bias_segment = segment
        self._build()
        if np.isnan(self.state.clock.fstate[dk.F_TNEXT]):
            dk.draw_next_time(self.state.planes, self.state.clock, self.geometry, self.field)

    @staticmethod
    def _field_group(layout: DeviceLayout, expt: np.ndarray, expt_lam: np.ndarray) -> dk.Field:
        """The kernels' Field group of ``layout``'s bias (the exp tables depend on gamma only)."""
        es = layout.electrostatics
        n = int(es.right_plane) - int(es.left_plane)
        psi_drop = float((es.potential_right_V - es.potential_left_V) / es.thermal_voltage_V)
        return dk.Field(gamma=float(es.gamma), psi_drop=psi_drop, expt=expt, expt_lam=expt_lam,
                        c_up=float(np.exp(-0.5 * psi_drop / n)), c_down=float(np.exp(0.5 * psi_drop / n)))

    # the bias protocol ---------------------------------------------------------------------------
    @property
    def bias_segment(self) -> int:
        """Index into :attr:`segments` of the segment the state is in (at a switch time: the
        segment that ends there, until the run goes on)."""
        return int(self.state.bias_segment)

    @property
    def field_V_per_um(self) -> float:
        """The applied field now (V/um, > 0 forward)."""
        return float(self.layout.field_V_per_um)

    def _switch_to(self, segment: int) -> None:
        """Enter bias segment ``segment`` at the current time (its start): the imposed potential,
        the uniform-field multipliers and the electrode rate tables take the new field, the contact
        planes' reaction rates and the sum tree are recomputed (pure functions of the integer
        state, as a restart computes them), and the pending next-event time, drawn with the old
        total rate, is discarded and drawn anew from the new total rate (one uniform of the kMC
        stream).  Exact for a Poisson process: the waiting time is memoryless, so the time to the
        next event after the switch is exponential with the new total rate."""
        E = self.segments[segment][2]
        self.state.bias_segment = segment
        self.layout = layout_under_field(self.layout, E)
        rc, rd = rate_tables(self.config, self.layout)
        self.rates = dk.Rates(hop=self.rates.hop, create=rc, refill=rd)
        self.field = self._field_group(self.layout, self.field.expt, self.field.expt_lam)
        s = self.state
        dk.refresh_entries(s.planes, s.bonds, self.geometry, self.rates)
        dk.draw_next_time(s.planes, s.clock, self.geometry, self.field)

    # state ------------------------------------------------------------------------------------
    def _initial_state(self) -> dict:
        lat, lay = self.lattice, self.layout
        P = lat.n_planes
        ss = np.random.SeedSequence(self.seed)
        init_ss, kmc_ss = ss.spawn(2)
        rng = np.random.default_rng(init_ss)
        occ = np.empty(lat.n_sites, dtype=np.uint8)
        vac = []
        fixed = uniform_background(lay) if self.config.kmc.background == "uniform" else None
        per_k = 3 * lat.nx * lat.ny
        in_layer = (plane_sites(lat, 0), plane_sites(lat, 1))  # the sites of planes 0 and 1
        for p in range(P):
            sites = (p // 2) * per_k + in_layer[p % 2]  # = plane_sites(lat, p)
            occ[sites] = 0 if lay.x_cl_initial[p] < 0.5 else 1
            n_v = rng.binomial(len(sites), lay.x_v_eq[p]) if fixed is None else int(fixed[p])
            if n_v:
                chosen = np.sort(rng.choice(len(sites), size=n_v, replace=False))
                occ[sites[chosen]] = 2
                vac.append(sites[chosen])
        vac_site = np.concatenate(vac) if vac else np.zeros(0, dtype=np.int64)
        n = len(vac_site)
        background = np.bincount(_planes_of_sites(lat, vac_site), minlength=P).astype(np.int64)
        # plane lists in slot order (slots are sorted by plane, so each list is a run of slots)
        planes = _planes_of_sites(lat, vac_site)
        head, tail, nxt, prv = _sorted_plane_lists(planes, P)
        del planes
        cells = _cells_of_sites(lat, vac_site)
        return {"occ": occ, "vac_site": vac_site.astype(np.int64), "vac_cell": cells.astype(np.int64),
                "head": head, "tail": tail, "nxt": nxt, "prv": prv,
                "L": np.zeros(P - 1, dtype=np.int64), "istate": np.array([n, 0, 0, 0], dtype=np.int64),
                "fstate": np.array([0.0, np.nan]), "counters": np.zeros(dk.N_COUNTERS, dtype=np.int64),
                "rng": rng_state_from_seed(kmc_ss), "background": background}

    def _build(self) -> None:
        s = self.state
        dk.build_device(s.vacancies, s.planes, s.bonds, s.clock, self.geometry, self.field, self.rates)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of the integer state + time, next-event time, counters and RNG (the checkpoint;
        :meth:`ionwire.kmc.state.DeviceState.checkpoint`)."""
        return self.state.checkpoint()

    @classmethod
    def from_state(cls, config: DeviceConfig, arrays: dict, seed: int | None = None) -> "DeviceSimulation":
        """Continue exactly from ``state_arrays()`` (a checkpoint)."""
        return cls(config, seed=seed, _state=arrays)

    @classmethod
    def from_occupancy(cls, config: DeviceConfig, occupancy, *, background=None, seed: int | None = None,
                       time_s: float = 0.0) -> "DeviceSimulation":
        """Start from a given occupancy (uint8[n_sites], 0 Br, 1 Cl, 2 vacancy) instead of the
        config's step profile, e.g. a state sampled from a continuum profile.  ``background``
        (int64[P], vacancies per plane of the fixed negative background) defaults to the vacancy
        count of each plane of ``occupancy`` (a neutral start).  The kMC stream is seeded from
        ``seed`` (default [kmc].seed) exactly as for a fresh run."""
        sim = cls(config, seed=seed)
        lat = sim.lattice
        occ = np.array(occupancy, dtype=np.uint8, copy=True)
        if occ.shape != (lat.n_sites,) or (occ.size and occ.max() > 2):
            raise ValueError(f"occupancy must be uint8[{lat.n_sites}] with codes 0, 1, 2")
        P = lat.n_planes
        vac_site = np.flatnonzero(occ == 2).astype(np.int64)
        planes = _planes_of_sites(lat, vac_site)
        order = np.argsort(planes, kind="stable")
        vac_site, planes = vac_site[order], planes[order]
        n_v = np.bincount(planes, minlength=P).astype(np.int64)
        bg = n_v.copy() if background is None else np.asarray(background, dtype=np.int64)
        if bg.shape != (P,):
            raise ValueError(f"background must have shape ({P},)")
        from .electrostatics import bond_state_from_charge
        L, lam = bond_state_from_charge(n_v - bg, sim.layout.electrostatics)
        st = sim.state_arrays()
        n = len(vac_site)
        head, tail, nxt, prv = _sorted_plane_lists(planes, P)
        st.update(occ=occ, vac_site=vac_site, vac_cell=_cells_of_sites(lat, vac_site), head=head, tail=tail,
                  nxt=nxt, prv=prv, L=L, istate=np.array([n, lam, 0, 0], dtype=np.int64),
                  fstate=np.array([float(time_s), np.nan]), background=bg,
                  bias_segment=np.array([segment_index(sim.segments, float(time_s))], dtype=np.int64),
                  rng=rng_state_from_seed(np.random.SeedSequence(sim.seed).spawn(2)[1]))
        return cls(config, seed=sim.seed, _state=st)

    # running -----------------------------------------------------------------------------------
    @property
    def occupancy(self) -> np.ndarray:
        """uint8[n_sites]: 0 Br, 1 Cl, 2 vacancy (the live array)."""
        return self.state.vacancies.occ

    @property
    def counters(self) -> np.ndarray:
        """int64[len(COUNTER_NAMES)]: the event counters (the live array)."""
        return self.state.clock.counters

    @property
    def background(self) -> np.ndarray:
        """int64[P]: the fixed background (initial vacancies) of each plane."""
        return self.state.background

    @property
    def time_s(self) -> float:
        return self.state.time_s

    @property
    def n_vacancies(self) -> int:
        return self.state.n_vacancies

    @property
    def events(self) -> int:
        return self.state.events

    def advance(self, t_stop_s: float, max_events: int | None = None) -> int:
        """Run events up to simulated time t_stop_s (the state is then the state at t_stop_s) or
        until max_events events were done.  Returns a status of :mod:`ionwire.kmc._device_kernels`:
        STATUS_TIME, STATUS_EVENTS (max_events reached first) or STATUS_NO_EVENT (nothing can
        happen any more before t_stop_s in the last segment reached).

        The bias follows :attr:`segments`: the kernel runs to the end of the current segment, the
        simulation switches there (:meth:`_switch_to`: the next event is drawn anew) and goes on.
        A run stopped exactly at a switch time is still in the segment that ends there (its
        potential and electrode rates are that segment's: the left limit, as the continuum
        reports the state at the end of an interval); the switch is made when it goes on.  With
        one segment (a constant field) the kernel calls are those of a run without a protocol."""
        remaining = np.iinfo(np.int64).max if max_events is None else int(max_events)
        t_stop_s = float(t_stop_s)
        while True:
            k = self.bias_segment
            t_switch = self.segments[k][1]
            if self.time_s >= t_switch:
                if t_stop_s <= t_switch:
                    return dk.STATUS_TIME
                self._switch_to(k + 1)
                continue
            status, remaining = self._run_kernel(min(t_stop_s, t_switch), remaining)
            if status == dk.STATUS_EVENTS or t_stop_s <= t_switch:
                return status
            self._switch_to(k + 1)

    def _run_kernel(self, t_stop_s: float, remaining: int) -> tuple[int, int]:
        """The event loop up to t_stop_s or ``remaining`` events (vacancy arrays grown as needed):
        (status, events still allowed)."""
        s = self.state
        while True:
            n = min(remaining, 1 << 40)
            if n <= 0:
                return dk.STATUS_EVENTS, remaining
            status, done = dk.run_device_events(s.vacancies, s.planes, s.bonds, s.clock, self.geometry, self.field,
                                                self.rates, n, t_stop_s)
            remaining -= done
            if status == dk.STATUS_FULL:
                s.grow(2 * s.capacity)
                continue
            if status == dk.STATUS_EVENTS and remaining > 0:
                continue
            return int(status), remaining

    # observables -------------------------------------------------------------------------------
    def plane_counts(self) -> np.ndarray:
        """int64[P, 3]: Br, Cl, vacancies on each anion plane (kept incrementally by the kernel)."""
        return self.state.planes.counts.copy()

    def charge_e(self) -> np.ndarray:
        """float64[P]: plane charge (e): vacancies - background."""
        return (self.state.planes.counts[:, 2] - self.background).astype(np.float64)

    def potential_V(self) -> np.ndarray:
        """float64[P]: the potential the hop rates use (exact discrete Poisson solution)."""
        return potential_from_bonds(self.state.bonds.L, int(self.state.clock.istate[dk.I_LAMBDA]),
                                    self.layout.electrostatics)

    def total_rate_per_s(self) -> float:
        """Sum of all event rates (1/s) in the current state: hops with their field factors and
        electrode reactions (the rate of the exponential waiting time to the next event)."""
        m_up, m_down = dk.multipliers(int(self.state.clock.istate[dk.I_LAMBDA]), self.field, self.geometry)
        return float(dk.total_rate(self.state.planes.tree, m_up, m_down))

    def profiles(self) -> dict[str, np.ndarray]:
        """Per-plane x_<A>, x_<B> (the halide pair's site fractions, e.g. x_Br, x_Cl), x_V,
        charge (e) and potential (V), float64[P]."""
        n = self.layout.sites_per_plane.astype(np.float64)
        c = self.state.planes.counts
        a, b = self.config.params.halides
        return {f"x_{a}": c[:, 0] / n, f"x_{b}": c[:, 1] / n, "x_V": c[:, 2] / n, "charge": self.charge_e(),
                "potential": self.potential_V()}

    def memory_bytes(self) -> int:
        """Bytes held by the state and the event structures (:attr:`DeviceState.nbytes`) and by
        the run's constant tables (geometry, field and rate tables)."""
        tables = (self.geometry, self.field, self.rates)
        return self.state.nbytes + int(sum(v.nbytes for g in tables for v in g if isinstance(v, np.ndarray)))

    def check_bookkeeping(self) -> None:
        """Raise AssertionError unless counts, lists, charges and bond state agree with a recount."""
        lat = self.lattice
        P = lat.n_planes
        n = self.n_vacancies
        occ = self.occupancy
        vac = self.state.vacancies
        planes = _planes_of_sites(lat, np.arange(lat.n_sites))
        counts = np.zeros((P, 3), dtype=np.int64)
        np.add.at(counts, (planes, occ.astype(np.int64)), 1)
        assert np.array_equal(counts, self.state.planes.counts), "plane counts differ from a recount"
        sites = np.flatnonzero(occ == 2)
        assert len(sites) == n, "vacancy count differs from the occupancy"
        assert np.array_equal(np.sort(vac.site[:n]), sites), "vacancy list differs from the occupancy"
        assert np.array_equal(_cells_of_sites(lat, vac.site[:n]), vac.cell[:n]), "vacancy cells stale"
        seen = np.zeros(n, dtype=bool)
        for p in range(P):
            v, m = vac.head[p], 0
            prev = -1
            while v >= 0:
                assert not seen[v] and planes[vac.site[v]] == p and vac.prv[v] == prev
                seen[v] = True
                prev, v, m = v, vac.nxt[v], m + 1
            assert vac.tail[p] == prev and m == counts[p, 2], f"plane list {p} broken"
        assert seen.all(), "a vacancy is in no plane list"
        from .electrostatics import solve_potential
        phi_direct = solve_potential(self.charge_e(), self.layout.electrostatics)
        err = np.max(np.abs(phi_direct - self.potential_V()))
        scale = max(1e-3, np.max(np.abs(phi_direct)))
        assert err <= 1e-9 * scale, f"incremental potential differs from a direct solve by {err:.3e} V"


def _planes_of_sites(lat: AnionLattice, sites: np.ndarray) -> np.ndarray:
    sites = np.asarray(sites, dtype=np.int64)
    k = sites // (3 * lat.nx * lat.ny)
    return 2 * k + (sites % 3 == 2)


def _cells_of_sites(lat: AnionLattice, sites: np.ndarray) -> np.ndarray:
    return lat.cells_of(sites)


def _sorted_plane_lists(planes: np.ndarray, P: int):
    """head, tail int64[P] and nxt, prv int64[n] of the per-plane doubly linked lists of slots
    0..n-1 whose planes ``planes`` are non-decreasing (each list: its slots in order)."""
    n = len(planes)
    head = np.full(P, -1, dtype=np.int64)
    tail = np.full(P, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    if n:
        same = planes[1:] == planes[:-1]
        v = np.arange(n, dtype=np.int64)
        prv[1:][same] = v[:-1][same]
        nxt[:-1][same] = v[1:][same]
        first = np.ones(n, dtype=bool)
        first[1:] = ~same
        last = np.ones(n, dtype=bool)
        last[:-1] = ~same
        head[planes[first]] = v[first]
        tail[planes[last]] = v[last]
    return head, tail, nxt, prv


# ---------------------------------------------------------------------------------------------
# runs with output
# ---------------------------------------------------------------------------------------------
def _config_json(config: DeviceConfig) -> str:
    return json.dumps(config.to_mapping(), sort_keys=True)


#: the front of a single trajectory is found on bins of this many unit cells (4 anion planes), the
#: default bin of a comparison (coupling.compare)
FRONT_BIN_CELLS = 2


def plane_bins(layout: DeviceLayout, bin_cells: int = FRONT_BIN_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """(bin index int64[P] of each plane, bin edges float64[n_bins + 1] in um): consecutive
    runs of 2 bin_cells planes from plane 0 (the last bin may hold fewer); plane p stands for the
    slab [z_p, z_p + a/2]."""
    P = len(layout.plane_z_um)
    ppb = 2 * int(bin_cells)
    h_um = layout.electrostatics.plane_spacing_A * 1e-4
    idx = np.arange(P) // ppb
    edges = np.append(layout.plane_z_um[::ppb], layout.plane_z_um[-1] + h_um)
    return idx, edges


def front_position_um(layout: DeviceLayout, plane_counts: np.ndarray, bin_cells: int = FRONT_BIN_CELLS) -> float:
    """The Br|Cl front (um) of one state: x_Br (the site fraction) averaged over bins of
    ``bin_cells`` cells, site-weighted, and its x_Br = 0.55 crossing nearest the integral front
    (:func:`ionwire.structures.front.binned_front`, as coupling.compare finds the kMC front)."""
    from ionwire.structures.front import binned_front

    idx, edges = plane_bins(layout, bin_cells)
    n_bins = len(edges) - 1
    sites = np.bincount(idx, weights=layout.sites_per_plane.astype(float), minlength=n_bins)
    br = np.bincount(idx, weights=np.asarray(plane_counts)[:, 0].astype(float), minlength=n_bins)
    return float(binned_front(0.5 * (edges[1:] + edges[:-1]), edges, br / sites, "left"))


class ProtocolSeries:
    """The per-frame time series of a run with a bias protocol (kmc.h5md.PROTOCOL_SERIES), from
    the simulation's state at each frame; ``start_front_um`` and the exchange counters and time of
    the previous frame carry over a restart (:meth:`resume`)."""

    names = tuple(PROTOCOL_SERIES)

    def __init__(self):
        self.front0_um: float | None = None
        self.previous: tuple[float, np.ndarray] | None = None

    def resume(self, traj, frames: int) -> None:
        """Continue after frame ``frames`` - 1 of an open trajectory (its series are already exact)."""
        if frames > 0:
            front = traj.series("front_position")
            self.front0_um = float(front[0]) * 1e-4
            self.previous = (float(traj.times_s[frames - 1]), np.asarray(traj.series("halide_exchange")[frames - 1]))

    def frame(self, sim: "DeviceSimulation") -> dict[str, np.ndarray]:
        es = sim.layout.electrostatics
        front = front_position_um(sim.layout, sim.state.planes.counts)
        if self.front0_um is None:
            self.front0_um = front
        ex = sim.state.clock.exchange.copy()
        # (created - refilled) by contact and species: halides that left the wire into the electrode
        net = (ex[:4] - ex[4:]).reshape(2, 2).astype(np.float64)
        current = np.zeros((2, 2))
        if self.previous is not None and sim.time_s > self.previous[0]:
            prev = self.previous[1]
            dnet = (ex[:4] - ex[4:] - (prev[:4] - prev[4:])).reshape(2, 2)
            current = dnet * ELEMENTARY_CHARGE_C / (sim.time_s - self.previous[0])
        self.previous = (sim.time_s, ex)
        return {"bias_voltage": np.float64(es.potential_left_V - es.potential_right_V),
                "front_position": np.float64(front * 1e4), "migration_length": np.float64((self.front0_um - front) * 1e4),
                "ionic_current": current, "charge_passed": net.sum(axis=1), "halide_exchange": ex}


def _static_arrays(sim: DeviceSimulation) -> dict[str, np.ndarray]:
    lay = sim.layout
    es = lay.electrostatics
    return {"plane_z_A": sim.lattice.plane_z_A(), "sites_per_plane": lay.sites_per_plane,
            "background_vacancies": sim.background, "contact": lay.contact,
            "imposed_planes": np.array([es.left_plane, es.right_plane]),
            "imposed_potential_V": np.array([es.potential_left_V, es.potential_right_V])}


def parse_checkpoint_every(text: str | int | None) -> tuple[str, float] | None:
    """'N' (events) or 'Ns' (wall seconds) -> ('events', N) / ('seconds', N); None -> None."""
    if text is None:
        return None
    s = str(text).strip().lower()
    try:
        if s.endswith("s"):
            v = float(s[:-1])
            kind = "seconds"
        else:
            v = float(int(float(s)))
            kind = "events"
    except (ValueError, OverflowError):
        raise ParameterError(f"--checkpoint-every expects a number of events (e.g. 1000000) or of wall seconds "
                             f"(e.g. 60s), got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise ParameterError(f"--checkpoint-every must be a positive finite number, got {text!r}")
    return kind, v


def run_device(config: DeviceConfig, out_path, *, resume: bool = False, checkpoint_every=None,
               overwrite: bool = False, progress=None) -> dict:
    """Run the device kMC with H5MD output at ``out_path`` and checkpoints at
    ``<out_path>.checkpoint`` (see :mod:`ionwire.kmc.h5md`).

    checkpoint_every: None (a checkpoint only at the end), ('events', N) or ('seconds', S), or a
    string accepted by :func:`parse_checkpoint_every`.  resume: continue from the checkpoint
    (the trajectory is validated read-only first and left untouched if anything is wrong; frames
    written after the checkpoint are dropped and recomputed identically).  progress: optional
    callable(frame, n_frames, sim).  Returns a JSON-able summary.
    """
    out_path = os.fspath(out_path)
    ck_path = checkpoint_path(out_path)
    if isinstance(checkpoint_every, (str, int)):
        checkpoint_every = parse_checkpoint_every(checkpoint_every)
    cfg_json = _config_json(config)
    _check_plausible(config)
    frame_times = device_frame_times(config)
    n_frames = len(frame_times)
    max_events = config.kmc.max_events or None
    wall0 = _time.perf_counter()

    series = ProtocolSeries() if config.bias is not None else None
    if resume:
        sim, writer, frame = _resume(config, out_path, ck_path, cfg_json, series)
        if writer is None:  # already complete
            return _summary(sim, out_path, n_frames, wall0, completed=True)
    else:
        if os.path.exists(out_path) and not overwrite:
            raise ParameterError(f"{out_path!r} exists: pass --resume to continue it or --overwrite to replace it")
        sim = DeviceSimulation(config)
        if sim.total_rate_per_s() <= 0.0:
            raise ParameterError(f"nothing can happen in this device: {sim.n_vacancies} vacancies and no electrode "
                                 "reaction or hop has a nonzero rate (check [vacancies], [electrodes], kmc.hops)")
        if os.path.exists(ck_path):
            os.remove(ck_path)
        writer = TrajectoryWriter.create(out_path, sim.lattice, config=config.to_mapping(), seed=sim.seed,
                                         counter_names=counter_names(config.params.halides),
                                         static=_static_arrays(sim), write_species=config.output.species,
                                         series=() if series is None else ProtocolSeries.names,
                                         series_columns={"halide_exchange": exchange_names(config.params.halides)},
                                         halides=config.params.halides)
        frame = 0

    last_ck_events = sim.events
    last_ck_wall = _time.perf_counter()

    def checkpoint(complete: bool = False):
        nonlocal last_ck_events, last_ck_wall
        write_checkpoint(ck_path, sim.state_arrays(),
                         {"config": cfg_json, "seed": sim.seed, "frames_written": frame, "run_complete": complete,
                          "trajectory": os.path.basename(out_path)})
        last_ck_events = sim.events
        last_ck_wall = _time.perf_counter()

    stopped = False
    try:
        while frame < n_frames and not stopped:
            t_frame = frame_times[frame]
            while True:
                budget = None
                if max_events is not None:
                    budget = max_events - sim.events
                    if budget <= 0:
                        stopped = True
                        break
                # chunks of at most 2^18 events: an interrupt (Ctrl-C, SIGTERM) is seen within one
                # chunk and checkpointed; chunking does not change the event sequence
                step = CHUNK_EVENTS
                if checkpoint_every is not None and checkpoint_every[0] == "events":
                    step = min(step, int(checkpoint_every[1]) - (sim.events - last_ck_events))
                step = max(step, 1)
                budget = step if budget is None else min(budget, step)
                status = sim.advance(t_frame, budget)
                if checkpoint_every is not None:
                    kind, val = checkpoint_every
                    due = (sim.events - last_ck_events >= val) if kind == "events" else \
                        (_time.perf_counter() - last_ck_wall >= val)
                    if due:
                        checkpoint()
                if status in (dk.STATUS_TIME, dk.STATUS_NO_EVENT):
                    break
            if stopped:
                break
            prof = sim.profiles()
            writer.write_frame(sim.events, sim.time_s, sim.occupancy if config.output.species else None, prof,
                               sim.counters, None if series is None else series.frame(sim))
            frame += 1
            if progress is not None:
                progress(frame, n_frames, sim)
        checkpoint(complete=True)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into it by the caller: keep the work
        checkpoint()
        raise KeyboardInterrupt(f"checkpoint written at frame {frame} of {n_frames}, t = {sim.time_s:.4g} s, "
                                f"{sim.events} events") from None
    finally:
        writer.close()
    if not math.isfinite(sim.time_s):
        raise ParameterError(f"the device run {out_path!r} reached a non-finite time ({sim.time_s})")
    return _summary(sim, out_path, n_frames, wall0, completed=not stopped, frames=frame)


CHUNK_EVENTS = 1 << 18
BYTES_PER_SITE = 4  # occupancy, its checkpoint copy and a frame's species buffer
BYTES_PER_VACANCY = 600  # vacancy arrays at twice the count (growth) and their temporaries


def device_frame_times(config: DeviceConfig) -> np.ndarray:
    """Frame times 0, dt, 2 dt, ... and a last frame exactly at duration_s (also when duration_s
    is not a multiple of the frame interval, or shorter than it)."""
    dt, duration = config.output.frame_interval_s, config.kmc.duration_s
    n = int(math.floor(duration / dt * (1 + 1e-12)))
    times = np.arange(n + 1) * dt
    if times[-1] < duration * (1 - 1e-9):
        times = np.append(times, duration)
    else:
        times[-1] = min(times[-1], duration)
    return times


def _check_plausible(config: DeviceConfig) -> None:
    """Refuse absurd fields, durations and seeds, and lattices beyond the machine's memory,
    before anything is allocated or written."""
    from ionwire.structures.parameters import check_duration, check_field, check_memory, check_seed

    if config.bias is None:
        check_field(config.kmc.field_V_per_um, "kmc.field_V_per_um")
    else:
        for t0, _, E in bias_segments(config):
            check_field(E, f"the [bias] field at t = {t0:.6g} s")
    check_duration(config.kmc.duration_s, "kmc.duration_s")
    check_seed(config.kmc.seed, "kmc.seed")
    a_um = config.material.lattice_constant_A * 1e-4
    nz = max(int(round(config.geometry.wire_length_um / a_um)), 1)
    n_sites = 3.0 * config.kmc.nx * config.kmc.ny * nz
    x_v = min(1.0, float(np.max(config.vacancies.equilibrium_fraction(config.material, np.array([0.0, 1.0])))))
    check_memory(n_sites * (BYTES_PER_SITE + BYTES_PER_VACANCY * x_v),
                 f"the device lattice ({config.kmc.nx} x {config.kmc.ny} x {nz} cells, {n_sites:.3g} sites)")


def _summary(sim: DeviceSimulation, out_path: str, n_frames: int, wall0: float, completed: bool,
             frames: int | None = None) -> dict:
    wall = _time.perf_counter() - wall0
    return {"output": out_path, "frames": n_frames if frames is None else frames, "time_s": sim.time_s,
            "events": sim.events, "vacancies": sim.n_vacancies, "completed": bool(completed),
            "counters": {n: int(v) for n, v in zip(counter_names(sim.config.params.halides), sim.counters)},
            "wall_s": wall}


def _resume(config: DeviceConfig, out_path: str, ck_path: str, cfg_json: str, series: ProtocolSeries | None = None):
    """Validate trajectory + checkpoint read-only; then reopen the trajectory for appending
    (``series``: the protocol time series continue from the last kept frame)."""
    with open_trajectory(out_path) as traj:
        if json.dumps(traj.config, sort_keys=True) != cfg_json:
            raise TrajectoryError(f"{out_path!r} was written with a different config than the one given")
        have = traj.n_frames
    if not os.path.exists(ck_path):
        raise TrajectoryError(f"cannot resume {out_path!r}: its checkpoint {ck_path!r} does not exist")
    arrays, attrs = read_checkpoint(ck_path)
    if attrs.get("config") != cfg_json:
        raise TrajectoryError(f"checkpoint {ck_path!r} belongs to a different config")
    frames = int(attrs["frames_written"])
    if frames > have:
        raise TrajectoryError(f"{out_path!r} holds {have} frames but its checkpoint needs {frames}: the "
                              f"trajectory is older than the checkpoint")
    sim = DeviceSimulation.from_state(config, arrays, seed=int(attrs["seed"]))
    if bool(attrs.get("run_complete", False)):
        return sim, None, frames
    if series is not None:
        with open_trajectory(out_path) as traj:
            series.resume(traj, frames)
    writer = TrajectoryWriter.reopen(out_path, frames)
    return sim, writer, frames


def simulate_profiles(config: DeviceConfig, times_s, seed: int | None = None) -> dict:
    """Run one replica in memory; profiles (float64[len(times), P] each) at the given increasing
    times, plus 'times_s', 'plane_z_um', 'counters' (int64[len(times), n]) and 'events'."""
    sim = DeviceSimulation(config, seed=seed)
    times = np.asarray(times_s, dtype=float)
    out = {k: np.zeros((len(times), sim.lattice.n_planes)) for k in observable_names(config.params.halides)}
    counters = np.zeros((len(times), dk.N_COUNTERS), dtype=np.int64)
    for i, t in enumerate(times):
        sim.advance(float(t))
        for k, v in sim.profiles().items():
            out[k][i] = v
        counters[i] = sim.counters
    out.update(times_s=times, plane_z_um=sim.layout.plane_z_um, counters=counters, events=sim.events)
    return out


# ---------------------------------------------------------------------------------------------
# benchmark
# ---------------------------------------------------------------------------------------------
def benchmark_config(cells: tuple[int, int, int] = (16, 16, 1024), seed: int = 0) -> DeviceConfig:
    """The standard device benchmark: a 16 x 16 x 1024-cell wire (786,432 anion sites, as many as
    ``ionwire bench kmc``), Br | Cl junction in the middle, x_V^eq(Br) = 1e-2 (Cl: 1e-2 x 0.0097),
    contacts 0.1 um wide at the wire ends, 2 V/um forward, electrode rates scaled up so that about
    1 event in 2e3 is a reaction (device_small: 1 in 1.4e3), r_d from detailed balance; electrostatics exact after every event."""
    nx, ny, nz = cells
    length = nz * 5.8e-4
    contact = min(0.1, 0.25 * length)
    return load_config({
        "vacancies": {"equilibrium_fraction": {"Br": 1e-2}},
        "geometry": {"wire_length_um": length, "contact_width_um": contact, "gap_um": length - 2 * contact},
        # detailed-balance annihilation at both contacts: a stationary vacancy number (with the
        # default irreversible positive contact the vacancy count, hence the cost per event,
        # would drift during the timing)
        "electrodes": {"alpha_um_per_V_s": {"Br": 2e4, "Cl": 2e4 / 34.0},
                       "r_d_form": "detailed_balance"},
        "kmc": {"nx": nx, "ny": ny, "field_V_per_um": 2.0, "duration_s": 1.0, "seed": seed},
        "output": {"frame_interval_s": 1.0, "species": False}})


def benchmark_device(events: int = 10_000_000, warmup_events: int = 1_000_000,
                     cells: tuple[int, int, int] = (16, 16, 1024), seed: int = 0) -> dict:
    """Time ``events`` device events after ``warmup_events`` (numba compilation and the initial
    transient excluded) on :func:`benchmark_config`.  Returns a JSON-able dict with
    events_per_second (wall clock), events_per_cpu_second (process CPU time: robust on a shared
    machine), sites, vacancies, planes, bytes_per_site (all state and event structures
    / sites), occupancy_bytes_per_site, reaction_fraction, wall_s."""
    config = benchmark_config(cells, seed)
    sim = DeviceSimulation(config)
    sim.advance(np.inf, warmup_events)
    c0 = sim.counters.copy()
    t0 = _time.perf_counter()
    cpu0 = _time.process_time()
    sim.advance(np.inf, events)
    wall = _time.perf_counter() - t0
    cpu = _time.process_time() - cpu0
    dc = sim.counters - c0
    reactions = int(dc[5] + dc[6] + dc[7] + dc[8])
    return {"target": "device", "events": int(dc[0]), "wall_s": wall, "cpu_s": cpu,
            "events_per_second": dc[0] / wall, "events_per_cpu_second": dc[0] / cpu,
            "sites": sim.lattice.n_sites, "vacancies": sim.n_vacancies, "planes": sim.lattice.n_planes,
            "cells": list(cells), "bytes_per_site": sim.memory_bytes() / sim.lattice.n_sites,
            "occupancy_bytes_per_site": sim.occupancy.nbytes / sim.lattice.n_sites,
            "reaction_fraction": reactions / max(int(dc[0]), 1), "field_V_per_um": config.kmc.field_V_per_um,
            "electrostatics": "exact incremental (every event)", "reactions": True}
