"""Validation of the continuum model against an ensemble of device-kMC replicas on ONE parameter set.

``ionwire compare CONFIG.toml -o REPORT_DIR`` (config: ``runs/validate.toml``).

One parameter object, read by both models
-----------------------------------------
The config's [material], [vacancies], [geometry] and [electrodes] tables build ONE
:class:`ionwire.structures.parameters.DeviceParameters`; the device kMC (kmc.device) and the continuum model
(continuum.model) are both constructed from that object.  Nothing is fitted to the kMC.

Mapping to the kMC scale (docs/model.md section 9).  The experiment (x_V ~ 3e-8, 10 um, hours) is out
of reach of the kMC, so the validation runs the SAME equations at a scale where it is not:
- vacancy fraction raised to x_V^eq(Br) ~ 1e-3 (Debye length 1.5 nm instead of 0.26 um);
- the wire shortened to ~100 nm (contacts and gap scaled alike, all multiples of a/2);
- times of microseconds to milliseconds instead of hours;
- the electrode rate constants alpha raised by the same factor for both electrodes, so that
  vacancies are injected within the kMC's time (the source form, composition dependence,
  detailed-balance r_d and the field dependence are unchanged);
- a, nu0, barriers, T, epsilon, formation energies and the field (V/um) are the experiment's.
Every number is in the config; both models read it from there.

Comparison
----------
For every bias (``compare.fields_V_per_um``; > 0 forward, < 0 reverse) R independent kMC replicas
(seeds derived from compare.seed, the field's number and the replica's: structures.seeds) give per-plane x_Br, x_V and phi at
``compare.times_s``; the continuum model gives them on its mesh at the same times.  Anion plane p
of the kMC (kmc.device puts it at z = p a/2 on a wire of 2 nz planes) is identified with the
continuum slab [p a/2, (p+1) a/2], so that the wire ends and the Br|Cl step coincide exactly in
both models; bins of ``bin_cells`` unit cells (2 bin_cells planes) average both models over the
same slabs (kMC: site-weighted; continuum: exact average of its piecewise-linear profile).
Under this mapping both models cover the same slabs: each kMC contact holds the planes whose slabs
tile the contact region (the continuum's contact volume), the kMC imposes its potentials on the
outer contact planes with the drop field x (their distance), and its plane potential is compared
with the continuum's at the slab centre (gauge: 0 at the centre of the right imposed plane's slab,
:func:`phi_reference_um`).  The rectification ratio (summary ``rectification``) is the forward
over the reverse migration length (|front - initial front|) at +-E, for the kMC mean with its
replica error (:func:`ionwire.coupling.statistics.rectification`) and for the continuum.
Statistics (reduced chi^2 with replica standard errors, the front at x_Br = 0.55 and its 2-sigma
agreement) are in :mod:`ionwire.coupling.statistics` / :mod:`ionwire.coupling.report`.

A bias protocol instead of fixed fields
---------------------------------------
A ``[bias]`` table (:mod:`ionwire.structures.bias`; then without compare.fields_V_per_um) makes
the comparison one direction, ``protocol``: every kMC replica runs the protocol
(kmc.device: exact at every switch, ramps as steps of [bias] ramp_step_s) and the continuum model
runs the SAME piecewise-constant segments (:func:`ionwire.kmc.device.bias_segments`), its
integrator restarted at every switch, so both models see one bias history; compare.times_s must
lie within the protocol.  No rectification ratio is formed (it needs a +-E pair).

The regime a scaled device must keep
------------------------------------
A kMC-scale device stands for the experiment only if it keeps the experiment's dimensionless
groups, not its sizes (:func:`regime` computes them; ``ionwire compare`` prints them and warns when
one is outside :data:`REGIME_LIMITS`; summary.json key ``regime``).  lambda_D is the Debye length
of the Br segment, sqrt(eps kT / (e^2 c_s x_V^eq)) with c_s the anion site density; values of the
experiment are for the defaults (x_V^eq = 3.3e-8, 1.5 um contacts, 5 um gap, a 300 nm x 300 nm
wire) at 4 V/um:

- bias over screening, e E lambda_D / kT (experiment ~40): above ~10 the vacancies cannot
  screen the bias, the gap depletes and only injection sustains transport (the rectifying
  regime); below ~1 the wire is screened and both polarities move the front by interdiffusion;
- hop bias, e E a / 4kT = e E (a/2) / 2kT (experiment 0.022): <= 0.3 keeps the hop rates in
  near-linear response;
- injection strength, the injected vacancy density in the gap over x_V^eq, alpha W_c kT /
  (e D_V x_V^eq) (injection flux alpha |E| c_s W_c over the drift velocity D_V e E / kT; W_c the
  contact width, D_V = z s^2 w / 6 = (2/3) a^2 w_Br the vacancy diffusivity in pure Br; experiment
  ~0.1): the forward value (alpha_Br, x_V^eq(Br)) is the group, the reverse one (alpha_Cl,
  x_V^eq(Cl)) is reported beside it;
- Debye length over gap, lambda_D / gap (experiment 0.05): <= ~0.1, or screening layers fill
  the gap;
- vacancies per Debye slab, c_s x_V^eq A lambda_D (experiment ~10 for a 300 nm wide wire; the
  kMC's A = nx ny a^2): the mean-field condition; with a few or fewer the continuum's smooth charge
  is not what the kMC's discrete vacancies make.  Its inverse measure, the mean-field coupling
  Gamma = (e / (eps A)) lambda_D / (kT/e) (:func:`mean_field_coupling`), is reported too.
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from ionwire.kmc.device import KMCSettings
from ionwire.structures.front import binned_front
from ionwire.structures.seeds import derive_seed
from ionwire.structures.parameters import (DEFAULT_HALIDES, DeviceParameters, HoldsDeviceParameters, ParameterError,
                                           from_mapping, inline_field, read_toml, require, to_mapping)
from ionwire.continuum.model import Numerics

from . import report as R
from . import statistics as S


#: [numerics] of a comparison (continuum.model.Numerics): the kMC-scale wire (~50 nm, Debye
#: length ~1.5 nm, microseconds) needs thin boundary layers, a tighter tolerance and a first step
#: of a picosecond.  A config's [numerics] table changes single values of it; first_output_s and
#: n_outputs are not used (the output times are compare.times_s).
VALIDATION_NUMERICS = Numerics(n_nodes=400, refinement=5.0, layer_width_um=0.005, rtol=1e-4,
                               initial_step_s=1e-12, max_steps=50000)


@dataclass(frozen=True)
class CompareSettings:
    """[compare]: biases, times, ensemble and binning.

    fields_V_per_um: applied fields (> 0 forward, < 0 reverse), one report direction each;
    times_s: compared times (increasing, > 0); replicas: kMC replicas per field (>= 4; the chi^2
    test needs >= 8 to be meaningful, see coupling.statistics); seed: root seed; bin_cells: unit
    cells per comparison bin; onsager: "theory" (Moleko-Allnatt-Allnatt with f0) or the path of
    an ``ionwire parameterize`` table file (its table for material.preset is used); f0: tracer
    correlation factor for the theory (None: continuum.model.default_f0()).  The safety cap on the
    kMC events of one replica is [kmc] max_events (0: none).
    """

    fields_V_per_um: tuple[float, ...] = (4.0, -4.0)
    times_s: tuple[float, ...] = (1e-5, 1e-4)
    replicas: int = 12
    seed: int = 1
    bin_cells: int = 2
    onsager: str = "theory"
    f0: float | None = None

    def __post_init__(self):
        require(len(self.fields_V_per_um) >= 1, "fields_V_per_um: give at least one field")
        require(all(math.isfinite(f) for f in self.fields_V_per_um), "fields_V_per_um must be finite")
        require(len(set(self.fields_V_per_um)) == len(self.fields_V_per_um), "fields_V_per_um: duplicate field")
        t = np.asarray(self.times_s, dtype=float)
        require(t.size >= 1 and np.all(np.isfinite(t)) and np.all(t > 0) and np.all(np.diff(t) > 0),
                f"times_s must be positive and increasing, got {list(self.times_s)!r}")
        require(4 <= self.replicas <= 10000, f"replicas must be in [4, 10000], got {self.replicas!r}")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed!r}")
        require(self.bin_cells >= 1, f"bin_cells must be >= 1, got {self.bin_cells!r}")
        if self.f0 is not None:
            require(0 < self.f0 < 1, f"f0 must be in (0, 1), got {self.f0!r}")


@dataclass(frozen=True)
class ElectrodeKineticsSettings:
    """[electrode_kinetics] (optional): measure r_c, r_d with the device kMC (hops frozen, uniform
    alloy wires) at every field x composition and fit the continuum source form
    (coupling.electrode_kinetics.measure_and_fit); creations_per_point sets the Poisson error
    (~1/sqrt(n) per point)."""

    fields_V_per_um: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    #: the second halide's fractions of the halide sites; TOML ``composition = {Cl = [...]}``
    #: keyed by the second halide of material.halides
    x_cl: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    creations_per_point: int = 2000
    seed: int = 5

    def __post_init__(self):
        require(len(self.fields_V_per_um) >= 2 and all(f > 0 for f in self.fields_V_per_um),
                "fields_V_per_um: give >= 2 positive fields (the sign only swaps the electrodes)")
        require(len(self.x_cl) >= 2 and all(0.0 <= x <= 1.0 for x in self.x_cl),
                "electrode_kinetics.composition: give >= 2 fractions in [0, 1]")
        require(self.creations_per_point >= 10, "creations_per_point must be >= 10")

    @classmethod
    def from_toml_keys(cls, data: Mapping, where: str, halides=None):
        """TOML ``composition = {<second halide> = [x, ...]}``; the older key x_cl names it in its error."""
        halides = halides or DEFAULT_HALIDES
        where = where or "electrode_kinetics"
        if "x_cl" in data:
            raise ParameterError(f"{where}.x_cl is no longer a key: write {where}.composition = "
                                 f"{{{halides[1]} = [...]}} (the second halide's fractions of the halide sites; "
                                 "per-halide values are tables keyed by the symbols of material.halides)")
        out = dict(data)
        if "composition" in out:
            v = out.pop("composition")
            if not (isinstance(v, Mapping) and set(v) == {halides[1]}):
                raise ParameterError(f"{where}.composition: write {{{halides[1]} = [x, ...]}}, the fractions of the "
                                     f"second halide of material.halides ({halides[0]}, {halides[1]}), got {v!r}")
            out["x_cl"] = v[halides[1]]
        return out, halides

    def to_toml_keys(self, out: dict, halides=None) -> dict:
        halides = halides or DEFAULT_HALIDES
        out["composition"] = {halides[1]: out.pop("x_cl")}
        return out


@dataclass(frozen=True)
class ValidationConfig(HoldsDeviceParameters):
    """The shared parameter set (``params``; the file's [material], [vacancies], [geometry],
    [electrodes]) + [kmc] (kmc.device.KMCSettings: the cross-section nx, ny, hops, max_events) +
    [numerics] (continuum.model.Numerics) + [compare] (``run`` key ignored).  The field, duration and seed of every kMC
    replica come from [compare], so [kmc] does not take them."""

    params: DeviceParameters = inline_field(DeviceParameters)
    run: str = "compare"
    kmc: KMCSettings = field(default_factory=KMCSettings)
    numerics: Numerics = VALIDATION_NUMERICS
    compare: CompareSettings = field(default_factory=CompareSettings)
    electrode_kinetics: ElectrodeKineticsSettings | None = None
    #: no [bias] protocol (a class attribute, not a field: a config without [bias] keeps its
    #: mapping and campaign fingerprint); with one, :class:`BiasedValidationConfig`
    bias = None

    @property
    def fields(self) -> tuple:
        """The compared biases: compare.fields_V_per_um, or (None,) for the [bias] protocol."""
        return (None,) if self.bias is not None else tuple(self.compare.fields_V_per_um)

    def max_abs_field(self) -> float:
        """The largest |field| (V/um) the comparison applies."""
        if self.bias is not None:
            return float(self.bias.max_abs_field())
        return max(abs(f) for f in self.compare.fields_V_per_um)


@dataclass(frozen=True)
class BiasedValidationConfig(ValidationConfig):
    """A comparison under a [bias] protocol (structures.bias.BiasProtocol) in place of
    compare.fields_V_per_um (module docstring)."""

    bias: Any = None

    def to_mapping(self) -> dict:
        """The config's tables with the [bias] table (and no compare.fields_V_per_um)."""
        m = to_mapping(self)
        m["bias"] = self.bias.to_mapping()
        del m["compare"]["fields_V_per_um"]
        return m


#: keys of a compare config that moved, and [kmc] keys that [compare] sets for every replica
_MOVED_KEYS = {
    ("compare", "max_events_per_replica"): "compare.max_events_per_replica: renamed kmc.max_events "
                                           "(the same [kmc] key as in a device config)",
    ("kmc", "field_V_per_um"): "kmc.field_V_per_um: not used by a compare config (the fields are "
                               "compare.fields_V_per_um)",
    ("kmc", "duration_s"): "kmc.duration_s: not used by a compare config (each replica runs to the "
                           "last of compare.times_s)",
    ("kmc", "seed"): "kmc.seed: not used by a compare config (replica seeds derive from compare.seed)",
}


def load_config(mapping: Mapping[str, Any]) -> ValidationConfig:
    """Validate a compare config mapping.  [kmc] field_V_per_um, duration_s and seed are set per
    replica by [compare]: a value other than the [kmc] default is an error (the default, as
    written by ``to_mapping``, is accepted, so a written config loads again)."""
    defaults = KMCSettings()
    for (table, key), message in _MOVED_KEYS.items():
        sub = mapping.get(table)
        if isinstance(sub, Mapping) and key in sub:
            if table == "kmc" and sub[key] == getattr(defaults, key):
                continue
            raise ParameterError(message)
    protocol = None
    if "bias" in mapping:
        from ionwire.structures.bias import resolve_bias

        protocol, mapping = resolve_bias(mapping, field_keys=("compare.fields_V_per_um",), duration_keys=())
    cfg = from_mapping(ValidationConfig, mapping)
    check_lattice_commensurate(cfg.params)
    if protocol is not None:
        last = float(cfg.compare.times_s[-1])
        if protocol.total_duration_s is None:
            protocol = protocol.with_duration(last)
        require(last <= protocol.total_duration_s * (1 + 1e-12),
                f"compare.times_s ends at {last:g} s, after the [bias] protocol ({protocol.total_duration_s:g} s)")
        require(protocol.is_piecewise_constant() or protocol.ramp_step_s is not None,
                "the [bias] protocol varies continuously: give [bias] ramp_step_s (both models take its steps)")
        cfg = BiasedValidationConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(ValidationConfig)},
                                     bias=protocol)
    return cfg


def load_file(path) -> tuple[ValidationConfig, str]:
    mapping, text = read_toml(path)
    return load_config(mapping), text


def check_lattice_commensurate(params: DeviceParameters, tol: float = 1e-6) -> None:
    """Both models must see the same device: the wire length must be a whole number of cells and
    the contact edges, gap edges and junction whole numbers of planes (a/2)."""
    a_um = params.material.lattice_constant_A * 1e-4
    geo = params.geometry
    n = geo.wire_length_um / a_um
    require(abs(n - round(n)) < tol * max(1.0, n),
            f"geometry.wire_length_um = {geo.wire_length_um} is not a whole number of cells "
            f"(a = {a_um} um; e.g. {round(n) * a_um:.8g})")
    (l0, l1), (r0, r1) = geo.contacts_um()
    for name, z in (("left contact start", l0), ("left contact end", l1), ("right contact start", r0),
                    ("right contact end", r1), ("junction", geo.junction_um)):
        k = z / (0.5 * a_um)
        require(abs(k - round(k)) < 1e-4, f"geometry: the {name} at {z:.8g} um is not on a plane boundary "
                                          f"(a multiple of a/2 = {0.5 * a_um:.6g} um)")


def direction_names(fields) -> list[str]:
    """'forward' / 'reverse' (/ 'zero_bias'), with the field appended when a sign repeats;
    ['protocol'] for the [bias] protocol (fields (None,))."""
    if tuple(fields) == (None,):
        return ["protocol"]
    sign = ["forward" if f > 0 else "reverse" if f < 0 else "zero_bias" for f in fields]
    return [s if sign.count(s) == 1 else f"{s}_{abs(f):g}V_per_um" for s, f in zip(sign, fields)]


def replica_seed(root: int, field_index: int, replica: int) -> int:
    """The seed of replica ``replica`` at field number ``field_index`` of [compare]."""
    return derive_seed(root, field_index, replica)


# --------------------------------------------------------------------------------------------
# the two models
# --------------------------------------------------------------------------------------------
def device_config(cfg: ValidationConfig, field_V_per_um: float | None, seed: int):
    """The device-kMC config of one replica: the shared parameter object and [kmc], with the field
    (None: the config's [bias] protocol), duration (the last compared time) and seed of the
    replica (kmc.device.DeviceConfig)."""
    from ionwire.kmc.device import DeviceConfig, OutputSettings, with_bias

    duration = float(cfg.compare.times_s[-1])
    if field_V_per_um is None:
        require(cfg.bias is not None, "device_config: no field and no [bias] protocol")
        kmc = dataclasses.replace(cfg.kmc, duration_s=duration, seed=int(seed))
        return with_bias(DeviceConfig(params=cfg.params, kmc=kmc,
                                      output=OutputSettings(frame_interval_s=duration, species=False)), cfg.bias)
    kmc = dataclasses.replace(cfg.kmc, field_V_per_um=float(field_V_per_um), duration_s=duration, seed=int(seed))
    return DeviceConfig(params=cfg.params, kmc=kmc, output=OutputSettings(frame_interval_s=duration, species=False))


def run_kmc_replica(cfg: ValidationConfig, field_V_per_um: float, seed: int) -> dict:
    """One device-kMC replica: per-plane x_Br, x_V, potential float64[t, P] at compare.times_s,
    plane_z_um, sites_per_plane, events, wall_s, counters."""
    from ionwire.kmc.device import device_layout, simulate_profiles

    dc = device_config(cfg, field_V_per_um, seed)
    t0 = time.perf_counter()
    prof = simulate_profiles(dc, np.asarray(cfg.compare.times_s, dtype=float), seed=seed)
    wall = time.perf_counter() - t0
    lay = device_layout(dc)
    return {"x_br": np.asarray(prof[f"x_{dc.params.halides[0]}"]), "x_v": np.asarray(prof["x_V"]), "phi_V": np.asarray(prof["potential"]),
            "plane_z_um": np.asarray(prof["plane_z_um"]), "sites_per_plane": np.asarray(lay.sites_per_plane, dtype=float),
            "events": int(prof["events"]), "counters": np.asarray(prof["counters"]), "wall_s": wall}


def onsager_source(cfg: ValidationConfig):
    """(onsager argument of the continuum model, f0, description)."""
    from ionwire.continuum.model import default_f0

    f0 = cfg.compare.f0 if cfg.compare.f0 is not None else default_f0()[0]
    if cfg.compare.onsager == "theory":
        return None, f0, f"Moleko-Allnatt-Allnatt theory, f0 = {f0:.4g}"
    from ionwire.structures.onsager_table import load_table

    table = load_table(cfg.compare.onsager, cfg.material.preset)
    table.check_material(cfg.material)
    return table.interpolator(), f0, f"kMC table {cfg.compare.onsager} ({cfg.material.preset}, x_V = {table.x_v:.3g})"


def run_continuum(cfg: ValidationConfig, field_V_per_um: float | None):
    """The continuum model on the same parameter object at compare.times_s (plus t = 0):
    continuum.model.WireResult.  field_V_per_um None: the [bias] protocol as the kMC replicas
    take it (:func:`protocol_segments`), one integration per segment from the state at its start
    (the integrator restarts at every switch)."""
    from ionwire.continuum.model import Solution, integrate, solution_to_result, wire_problem

    num = cfg.numerics
    onsager, f0, _ = onsager_source(cfg)
    t_out = np.concatenate(([0.0], np.asarray(cfg.compare.times_s, dtype=float)))
    if field_V_per_um is not None:
        prob = wire_problem(cfg.params, float(field_V_per_um), num, onsager=onsager, f0=f0)
        sol = integrate(prob, t_out, num.rtol, num.initial_step_s, num.max_steps)
        return solution_to_result(prob, sol, {"field_V_per_um": float(field_V_per_um)})
    segs = protocol_segments(cfg)
    base = wire_problem(cfg.params, segs[0][2], num, onsager=onsager, f0=f0)
    y = base.y0.copy()
    ts, ys, qv, qb = [0.0], [y.copy()], [0.0], [0.0]
    stats: dict[str, int] = {}
    t_last = t_out[-1]
    for t0, t1, E in segs:
        if t0 >= t_last:
            break
        end = min(t1, t_last)
        inside = t_out[(t_out > t0) & (t_out < end)]
        local = np.concatenate(([0.0], inside - t0, [end - t0]))
        prob = wire_problem(cfg.params, E, num, onsager=onsager, f0=f0, mesh=base.mesh)
        prob.y0 = y
        sol = integrate(prob, local, num.rtol, num.initial_step_s, num.max_steps)
        for k, v in sol.stats.items():
            if isinstance(v, (int, np.integer)):
                stats[k] = stats.get(k, 0) + int(v)
        ts.extend(t0 + local[1:])
        ys.extend(sol.y[1:])
        qv.extend(qv[-1] + sol.q_v[1:])
        qb.extend(qb[-1] + sol.q_br[1:])
        y = sol.y[-1].copy()
    ts_arr = np.asarray(ts)
    # the compared times (and 0): a compared time at a switch is the state at the end of the
    # segment before it, the state at the switch
    keep = [int(np.argmin(np.abs(ts_arr - t))) for t in t_out]
    stats["restarts"] = len(segs) - 1
    sol_all = Solution(ts_arr[keep], np.asarray(ys)[keep], np.asarray(qv)[keep], np.asarray(qb)[keep], stats)
    return solution_to_result(base, sol_all, {"field_V_per_um": float(segs[0][2]), "bias": cfg.bias.to_mapping()})


def protocol_segments(cfg: ValidationConfig) -> tuple[tuple[float, float, float], ...]:
    """The piecewise-constant segments of the [bias] protocol that the kMC replicas run
    (kmc.device.bias_segments): the continuum model takes the same ones."""
    from ionwire.kmc.device import bias_segments

    return bias_segments(device_config(cfg, None, 0))


# --------------------------------------------------------------------------------------------
# binning both models onto the same slabs
# --------------------------------------------------------------------------------------------
def plane_bins(n_planes: int, plane_spacing_um: float, planes_per_bin: int) -> np.ndarray:
    """Bin edges (um) for kMC plane p <-> continuum slab [p h, (p+1) h]; float64[nb + 1]."""
    nb = n_planes // planes_per_bin
    return np.arange(nb + 1) * planes_per_bin * plane_spacing_um


def bin_kmc(replicas: list[dict], planes_per_bin: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({field: float64[R, t, nb]}, sites per bin float64[nb]) from per-replica plane profiles."""
    w = replicas[0]["sites_per_plane"]
    out = {}
    for f in R.FIELDS:
        stack = np.stack([r[f] for r in replicas])  # [R, t, P]
        if f == "phi_V":
            # the potential is a point value on each plane: plain mean over the bin's planes
            out[f] = S.bin_planes(stack, np.ones_like(w), planes_per_bin)
        else:
            out[f] = S.bin_planes(stack, w, planes_per_bin)
    nb = out["x_br"].shape[-1]
    sites = w[: nb * planes_per_bin].reshape(nb, planes_per_bin).sum(axis=1)
    return out, sites


def phi_reference_um(cfg: ValidationConfig) -> float:
    """Where the kMC's potential is 0 in the continuum's coordinate: the centre of the slab of the
    kMC's right imposed plane (kmc.device: plane p stands for the slab [z_p, z_p + a/2])."""
    from ionwire.kmc.device import device_layout

    lay = device_layout(device_config(cfg, 0.0, 0))
    h_um = 0.5 * cfg.material.lattice_constant_A * 1e-4
    return float(lay.plane_z_um[lay.electrostatics.right_plane] + 0.5 * h_um)


def bin_continuum(result, edges_um: np.ndarray, phi_reference_um: float) -> dict[str, np.ndarray]:
    """{field: float64[t, nb]} bin averages of the continuum result (t = compared times, t > 0).

    The potential is put in the kMC's gauge (kmc.device: 0 at the right imposed plane, V at the
    left one; the continuum imposes +-V/2): phi -> phi - phi(phi_reference_um), with the
    reference at the centre of the right imposed plane's slab (:func:`phi_reference_um`)."""
    sel = result.times_s > 0
    out = {}
    for f in R.FIELDS:
        vals = getattr(result, f)[sel]
        if f == "phi_V":
            ref = np.array([np.interp(phi_reference_um, result.z_um, row) for row in vals])
            vals = vals - ref[:, None]
        out[f] = S.bin_average_piecewise_linear(result.z_um, vals, edges_um)
    return out


# --------------------------------------------------------------------------------------------
# the whole comparison
# --------------------------------------------------------------------------------------------
def compare(cfg: ValidationConfig, outdir, config_toml: str = "", progress: bool = True,
            kmc_runner=run_kmc_replica, continuum_runner=run_continuum) -> dict:
    """Run the ensemble and the continuum model for every field, analyse, write the report.

    Writes OUTDIR/report.h5 (coupling.io layout), OUTDIR/summary.json and PNGs per direction.
    Returns the summary: {"directions": {name: {chi2_per_dof: {field: [per time]}, ...}},
    "chi2_per_dof": {name: {field: [...]}}, "front_position_agreement": {name: {...}},
    "replicas", "wall_s": {"kmc", "continuum", "total"}, "parameters", "mapping", ...}.
    """
    from .io import write_report
    from ionwire.structures.provenance import provenance

    t_start = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    c = cfg.compare
    names = direction_names(cfg.fields)
    a_um = cfg.material.lattice_constant_A * 1e-4
    h_um = 0.5 * a_um
    ppb = 2 * c.bin_cells
    kT = cfg.material.kT_eV
    br_side = "left"  # structures.parameters.Geometry: Br segment at small z
    _, _, onsager_desc = onsager_source(cfg)
    regime_now = config_regime(cfg)
    for w in regime_now["warnings"]:
        warnings.warn(w, RegimeWarning, stacklevel=2)
    directions, arrays_all = {}, {}
    wall_kmc = wall_cont = 0.0
    events_total = 0
    for fi, (E, name) in enumerate(zip(cfg.fields, names)):
        reps = []
        it = range(c.replicas)
        if progress:
            it = tqdm(it, desc=f"kMC {name}", leave=False)
        for r in it:
            res = kmc_runner(cfg, E, replica_seed(c.seed, fi, r))
            wall_kmc += res["wall_s"]
            events_total += res["events"]
            reps.append(res)
        t0 = time.perf_counter()
        cres = continuum_runner(cfg, E)
        wall_cont += time.perf_counter() - t0
        kmc_binned, sites = bin_kmc(reps, ppb)
        n_planes = reps[0]["x_br"].shape[-1]
        edges_um = plane_bins(n_planes, h_um, ppb)
        cont_binned = bin_continuum(cres, edges_um, phi_reference_um(cfg))
        # (the protocol's direction is labelled with its field at the last compared time)
        E_label = E if E is not None else cfg.bias.field_at(c.times_s[-1])
        arrays, summ = R.analyse_direction(edges_um * 1e3, c.times_s, kmc_binned, cont_binned, sites, br_side, kT,
                                           E_label, front_resolution=h_um * 1e3 / math.sqrt(12.0))
        if E is None:
            summ["bias"] = cfg.bias.to_mapping()
            summ["bias_segments"] = [list(sg) for sg in protocol_segments(cfg)]
        # the initial front (the step at the junction, binned like the profiles): the origin of
        # the migration length of both models
        x0 = S.bin_average_piecewise_linear(cres.z_um, cres.x_br[cres.times_s == 0][:1], edges_um)
        zc_nm = 0.5 * (edges_um[1:] + edges_um[:-1]) * 1e3
        arrays["front_initial_nm"] = float(binned_front(zc_nm, edges_um * 1e3, x0, br_side)[0])
        arrays["kmc_events"] = np.array([r["events"] for r in reps])
        arrays["kmc_wall_s"] = np.array([r["wall_s"] for r in reps])
        summ["kmc_events_per_replica_mean"] = float(np.mean(arrays["kmc_events"]))
        # the potential joins the acceptance where the mean-field condition holds
        summ["phi_in_acceptance"] = phi_in_acceptance(cfg)
        if summ["phi_in_acceptance"] and summ.get("chi2_within_threshold") is not None:
            phi_ok = bool(np.all(np.asarray(summ["chi2_per_dof_variance_corrected"]["phi_V"]) <= R.CHI2_THRESHOLD))
            summ["chi2_within_threshold"] = bool(summ["chi2_within_threshold"] and phi_ok)
        summ["continuum_solver"] = {k: v for k, v in cres.metadata.items() if k.startswith("solver_")}
        # largest hop bias in the run: e E_local (a/2) / 2kT from the kMC mean potential drop per plane
        dphi = np.abs(np.diff(np.mean([r["phi_V"] for r in reps], axis=0), axis=-1))
        summ["max_hop_bias_eEs_over_kT"] = float(np.max(dphi) / kT / 2.0)
        E_max = abs(E) if E is not None else cfg.max_abs_field()
        summ["nominal_hop_bias_eEs_over_kT"] = float(E_max * 1e6 * h_um * 1e-6 / kT / 2.0)
        directions[name] = summ
        arrays_all[name] = arrays
        R.plot_direction(arrays, name, outdir, halides=cfg.params.halides)
    rect = None if cfg.bias is not None else rectification_summary(c.fields_V_per_um, names, arrays_all,
                                                                   resolution_nm=h_um * 1e3 / math.sqrt(12.0))
    if rect is not None:
        R.plot_rectification(c.times_s, rect, {n: {"kmc": arrays_all[n]["front_kmc_nm"],
                                                   "continuum": arrays_all[n]["front_continuum_nm"]}
                                               for n in (rect["forward"], rect["reverse"])}, "nm", outdir,
                             title=f"rectification at ±{rect['field_V_per_um']:g} V/um", halides=cfg.params.halides)
    electrode = None
    if cfg.electrode_kinetics is not None:
        from .electrode_kinetics import measure_and_fit

        ek = cfg.electrode_kinetics
        t0 = time.perf_counter()
        electrode = measure_and_fit(cfg.params, cfg.kmc.nx, cfg.kmc.ny, ek.fields_V_per_um, ek.x_cl, ek.seed,
                                    ek.creations_per_point)
        electrode["wall_s"] = time.perf_counter() - t0
        R.write_json(outdir / "electrode_kinetics.json", electrode)
    wall_total = time.perf_counter() - t_start
    summary = {
        "chi2_per_dof": {n: d["chi2_per_dof"] for n, d in directions.items()},
        "chi2_per_dof_variance_corrected": {n: d["chi2_per_dof_variance_corrected"] for n, d in directions.items()},
        "acceptance_criterion": R.ACCEPTANCE + (
            f"; phi too (mean-field coupling {mean_field_coupling(cfg):.3g} <= {MEAN_FIELD_LIMIT})"
            if phi_in_acceptance(cfg) else ""),
        "front_position_agreement": {n: d.get("front_position_agreement") for n, d in directions.items()},
        "replicas": c.replicas,
        "times_s": list(c.times_s),
        "wall_s": {"kmc": wall_kmc, "continuum": wall_cont, "total": wall_total},
        "kmc_events_total": events_total,
        "chi2_threshold": R.CHI2_THRESHOLD,
        "expected_chi2_per_dof_if_models_agree": S.expected_chi2_per_dof(c.replicas),
        "accepted": {n: {"chi2": d["chi2_within_threshold"],
                         "front": (d.get("front_position_agreement") or {}).get("all_within")}
                     for n, d in directions.items()},
        "directions": directions,
        "onsager": onsager_desc,
        "preset": cfg.material.preset,
        "parameters": to_mapping(cfg.params),
        "bin_nm": ppb * h_um * 1e3,
        "debye_length_nm": _debye_length_nm(cfg.params),
        "mean_field_coupling": mean_field_coupling(cfg),
        "vacancies_per_debye_slab": vacancies_per_debye_slab(cfg),
        "regime": regime_now,
        "rectification": rect,
        "bias": None if cfg.bias is None else cfg.bias.to_mapping(),
        "electrode_kinetics": None if electrode is None else {
            k: v for k, v in electrode.items() if k != "measurements"},
    }
    # the outputs name the first halide's fraction from the pair (x_br for Br)
    summary = R.named_for_pair(summary, cfg.params.halides)
    arrays_all = R.named_for_pair(arrays_all, cfg.params.halides)
    write_report(outdir / "report.h5", summary, arrays_all, config_toml, provenance(config_toml=config_toml))
    R.write_json(outdir / "summary.json", summary)
    return summary


#: the potential's reduced chi^2 is part of the acceptance when the mean-field coupling is at
#: most this (one vacancy changes the potential across a Debye length by <= 0.5 kT/e)
MEAN_FIELD_LIMIT = 0.5


def phi_in_acceptance(cfg: ValidationConfig) -> bool:
    """True where the mean-field condition holds (:func:`mean_field_coupling` <= MEAN_FIELD_LIMIT):
    there the continuum's smooth-charge potential is what the kMC's vacancies make, and phi's
    reduced chi^2 is held to the same threshold as x_Br and x_V."""
    return mean_field_coupling(cfg) <= MEAN_FIELD_LIMIT


def mean_field_coupling(cfg: ValidationConfig) -> float:
    """Gamma = (e / (eps A)) lambda_D / (kT/e): the potential drop (in kT/e) that ONE vacancy's
    laterally averaged field makes across a Debye length of the kMC wire (cross-section A =
    nx ny a^2).  The continuum's mean-field (Poisson-Boltzmann) electrostatics assumes Gamma << 1;
    for Gamma >~ 1 single vacancies dominate the potential and the kMC's potential profile departs
    from the continuum's while the composition profiles can still agree."""
    from ionwire.structures.units import ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_PER_M, thermal_voltage_V

    m = cfg.material
    area = cfg.kmc.nx * cfg.kmc.ny * (m.lattice_constant_A * 1e-10) ** 2
    eps = m.relative_permittivity * VACUUM_PERMITTIVITY_F_PER_M
    return ELEMENTARY_CHARGE_C / (eps * area) * _debye_length_nm(cfg.params) * 1e-9 / thermal_voltage_V(m.temperature_K)


def vacancies_per_debye_slab(cfg: ValidationConfig) -> float:
    """Mean number of vacancies (Br segment) in a slab one Debye length thick across the kMC wire."""
    a = cfg.material.lattice_constant_A * 1e-10
    sites_per_m = 3 * cfg.kmc.nx * cfg.kmc.ny / a
    return sites_per_m * cfg.vacancies.reference_fraction * _debye_length_nm(cfg.params) * 1e-9


def _debye_length_nm(params: DeviceParameters) -> float:
    from ionwire.structures.units import (ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_PER_M, site_density_per_m3,
                                 thermal_voltage_V)

    m = params.material
    cs = site_density_per_m3(m.lattice_constant_A) * params.vacancies.reference_fraction
    eps = m.relative_permittivity * VACUUM_PERMITTIVITY_F_PER_M
    return math.sqrt(eps * thermal_voltage_V(m.temperature_K) / (ELEMENTARY_CHARGE_C * cs)) * 1e9



# --------------------------------------------------------------------------------------------
# the dimensionless regime (module docstring)
# --------------------------------------------------------------------------------------------
class RegimeWarning(UserWarning):
    """A dimensionless group of the compared device is outside the experiment's regime."""


#: (low, high) bounds of each group outside which the device is not in the experiment's regime
#: (None: no bound on that side)
REGIME_LIMITS = {
    "bias_over_screening": (10.0, None),
    "hop_bias": (None, 0.35),
    "injection_strength": (0.03, 1.0),
    "debye_length_over_gap": (None, 0.15),
    "vacancies_per_debye_slab": (3.0, None),
}

#: the experiment's wire cross-section (um) for the vacancies-per-Debye-slab group
EXPERIMENT_WIRE_WIDTH_UM = 0.3


def regime(params: DeviceParameters, field_V_per_um: float, cross_section_um2: float) -> dict[str, float]:
    """The dimensionless groups of a device (module docstring) at |field_V_per_um|, for a wire of
    cross-section ``cross_section_um2``: {group: value} for the groups of :data:`REGIME_LIMITS`
    plus injection_strength_reverse, mean_field_coupling and debye_length_nm."""
    m = params.material
    kT = m.kT_eV
    a_um = m.lattice_constant_A * 1e-4
    lam_um = _debye_length_nm(params) * 1e-3
    E = abs(float(field_V_per_um))
    # vacancy diffusivity in each end member, um^2/s: z s^2 w / 6 with z = 8, s = a/sqrt 2
    d_v = [2.0 / 3.0 * a_um ** 2 * w for w in m.jump_frequency_pair_per_s()]
    el, vac, geo = params.electrodes, params.vacancies, params.geometry
    x_br = vac.reference_fraction
    x_cl = float(vac.equilibrium_fraction(m, 1.0))
    W = geo.contact_width_um
    sites_per_um3 = 3.0 / a_um ** 3
    vps = sites_per_um3 * x_br * cross_section_um2 * lam_um
    area_m2 = cross_section_um2 * 1e-12
    from ionwire.structures.units import ELEMENTARY_CHARGE_C, VACUUM_PERMITTIVITY_F_PER_M, thermal_voltage_V

    eps = m.relative_permittivity * VACUUM_PERMITTIVITY_F_PER_M
    gamma = ELEMENTARY_CHARGE_C / (eps * area_m2) * lam_um * 1e-6 / thermal_voltage_V(m.temperature_K)
    return {
        "bias_over_screening": E * lam_um / kT,
        "hop_bias": E * a_um / (4.0 * kT),
        "injection_strength": el.alphas_um_per_V_s[0] * W * kT / (d_v[0] * x_br),
        "injection_strength_reverse": el.alphas_um_per_V_s[1] * W * kT / (d_v[1] * x_cl),
        "debye_length_over_gap": lam_um / geo.gap_um,
        "vacancies_per_debye_slab": vps,
        "mean_field_coupling": gamma,
        "debye_length_nm": lam_um * 1e3,
    }


def experiment_regime(field_V_per_um: float = 4.0) -> dict[str, float]:
    """:func:`regime` of the experiment: the default parameters, a 300 nm x 300 nm wire."""
    return regime(DeviceParameters(), field_V_per_um, EXPERIMENT_WIRE_WIDTH_UM ** 2)


def config_regime(cfg: ValidationConfig) -> dict[str, Any]:
    """The regime of a compare config at its largest |field| and the kMC cross-section, the
    experiment's values, the limits and the warnings: {"groups", "experiment", "limits",
    "field_V_per_um", "warnings"}."""
    E = cfg.max_abs_field()
    a_um = cfg.material.lattice_constant_A * 1e-4
    groups = regime(cfg.params, E, cfg.kmc.nx * cfg.kmc.ny * a_um ** 2)
    return {"field_V_per_um": E, "groups": groups, "experiment": experiment_regime(),
            "limits": {k: list(v) for k, v in REGIME_LIMITS.items()}, "warnings": regime_warnings(groups)}


def regime_warnings(groups: Mapping[str, float]) -> list[str]:
    """One sentence per group of :data:`REGIME_LIMITS` outside its bounds."""
    out = []
    for name, (lo, hi) in REGIME_LIMITS.items():
        v = groups[name]
        if lo is not None and v < lo:
            out.append(f"{name} = {v:.3g} is below {lo:g}: not the experiment's regime")
        elif hi is not None and v > hi:
            out.append(f"{name} = {v:.3g} is above {hi:g}: not the experiment's regime")
    return out


def regime_lines(reg: Mapping[str, Any]) -> list[str]:
    """The regime of :func:`config_regime` as a few lines (config and experiment side by side),
    then one ``warning:`` line per group outside the experiment's regime."""
    g, x = reg["groups"], reg["experiment"]
    lines = [f"regime at |E| = {reg['field_V_per_um']:g} V/um (this config / experiment at 4 V/um):"]
    for name in (*REGIME_LIMITS, "injection_strength_reverse", "mean_field_coupling"):
        lines.append(f"  {name:26s} {g[name]:10.3g} / {x[name]:.3g}")
    lines += [f"warning: {w}" for w in reg["warnings"]]
    return lines


def rectification_summary(fields, names, arrays_all: Mapping[str, Mapping[str, Any]],
                          resolution_nm: float = 0.0) -> dict | None:
    """The rectification ratio (coupling.statistics.rectification) of the largest field E whose
    reverse -E was run too, from the front displacements of both models against the initial front
    (resolution_nm: the front-position quantisation, as in the front agreement); None without
    such a pair.  Adds "forward", "reverse" (direction names), "field_V_per_um",
    "unit"."""
    pairs = [f for f in fields if f > 0 and -f in fields]
    if not pairs:
        return None
    E = max(pairs)
    fwd, rev = names[list(fields).index(E)], names[list(fields).index(-E)]
    d = {}
    for n in (fwd, rev):
        a = arrays_all[n]
        d[n] = (np.asarray(a["front_kmc_nm"]) - a["front_initial_nm"],
                np.asarray(a["front_continuum_nm"]) - a["front_initial_nm"])
    out = S.rectification(d[fwd][0], d[rev][0], d[fwd][1], d[rev][1], resolution=resolution_nm)
    out.update(forward=fwd, reverse=rev, field_V_per_um=float(E), unit="nm",
               front_initial_nm=float(arrays_all[fwd]["front_initial_nm"]))
    return out
