"""Field response of vacancy-mediated transport in a uniform random alloy, measured by the bulk
kMC against the linear-response (Onsager) prediction that the continuum model uses.

In a uniform alloy the continuum flux of species a reduces to the drift term of docs/model.md
section 6,

    J_a = (z s^2 / 6) x_V (l_aBr + l_aCl) (e E / kT),

so the summed z displacement of all atoms of species a grows, per vacancy, at

    v_a = (z s^2 / 6) (l_aBr + l_aCl) (e E / kT) = (16 b / 3) (l_aBr + l_aCl)   [a/2 per second]

with b = e E (a/2) / 2kT the hop bias (z = 8, s^2 = a^2 / 2).  :func:`measure_drift` measures v_a
with independent replicas of :class:`ionwire.kmc.bulk.BulkKMC` in a field and returns the ratio
to that prediction with the Moleko-Allnatt-Allnatt l_ab (dilute limit, the measured f0): 1 in
linear response, sinh(b)/b for a single uncorrelated hop.

:func:`tracer_cumulants` measures the first three cumulants of the atoms' z displacements (the
skewness that few field-biased vacancy passages give, which a drift-diffusion continuum lacks),
and :func:`step_profile_cumulants` the same cumulants of a binned step profile, kMC or continuum
(docs/model.md section 15.4).
"""
from __future__ import annotations

import numpy as np

from ionwire.kmc.bulk import BulkKMC, field_half_eV
from ionwire.kmc.state import BulkState
from ionwire.structures.errors import ParameterError
from ionwire.structures.lattice import AnionLattice
from ionwire.structures.onsager import F0_ANION_PEROVSKITE, onsager_coefficients
from ionwire.structures.parameters import Material


def field_for_hop_bias(hop_bias: float, material: Material) -> float:
    """The field (V/um) whose hop bias e E (a/2) / 2kT is ``hop_bias``."""
    return float(hop_bias) * material.kT_eV / field_half_eV(1.0, material.lattice_constant_A)


def linear_drift_per_vacancy(x_cl: float, hop_bias: float, material: Material, f0: float = F0_ANION_PEROVSKITE):
    """(v_Br, v_Cl): the linear-response drift of each species per vacancy (a/2 per second) in a
    uniform alloy of Cl fraction ``x_cl`` (MAA, c_V -> 0)."""
    w_first, w_second = material.jump_frequency_pair_per_s()
    l_bb, l_bc, l_cc = onsager_coefficients(1.0 - x_cl, x_cl, 0.0, w_first, w_second, f0)
    k = 16.0 * hop_bias / 3.0
    return k * float(l_bb + l_bc), k * float(l_bc + l_cc)


def measure_drift(x_cl: float, hop_bias: float, *, cells=(12, 12, 12), n_vacancies: int = 4, replicas: int = 8,
                  events: int = 2_000_000, warmup_events: int = 200_000, seed: int = 0,
                  material: Material | None = None) -> dict:
    """Drift of Br and Cl per vacancy in a field of hop bias ``hop_bias`` (along -z for the
    halides), from ``replicas`` independent bulk runs of ``events`` hops each after
    ``warmup_events``.  Returns the per-species mean and standard error of the ratio
    measured / linear-response prediction, and the prediction itself (a/2 per second per vacancy).
    The sign convention: halides drift against E, so v_a < 0 for E > 0; the ratio is signed."""
    material = Material() if material is None else material
    if material.preset != "random_alloy":
        raise ParameterError(f"the MAA prediction holds for the random_alloy preset only, got {material.preset!r}")
    if not 0.0 < x_cl < 1.0:
        raise ParameterError(f"x_cl must be in (0, 1) for a two-species drift measurement, got {x_cl!r}")
    if not hop_bias > 0.0:
        raise ParameterError(f"hop_bias must be > 0, got {hop_bias!r}")
    if replicas < 2:
        raise ParameterError(f"replicas must be >= 2 for an error bar, got {replicas!r}")
    field = field_for_hop_bias(hop_bias, material)
    lattice = AnionLattice(*cells, periodic_z=True, lattice_constant_A=material.lattice_constant_A)
    pred = np.array(linear_drift_per_vacancy(x_cl, hop_bias, material))
    ratios = np.empty((replicas, 2))
    seeds = np.random.SeedSequence(seed).spawn(replicas)
    for r in range(replicas):
        state = BulkState.random(lattice, x_cl, n_vacancies, seeds[r])
        eng = BulkKMC(state, material, field)
        eng.run(warmup_events)
        state.reset_observables()
        eng.run(events)
        v = state.collective_displacement[:, 2] / state.time_s / n_vacancies  # a/2 per s per vacancy
        ratios[r] = -v / pred  # halides drift against the field: the prediction's sign is -E
    mean = ratios.mean(axis=0)
    sem = ratios.std(axis=0, ddof=1) / np.sqrt(replicas)
    return {"x_cl": x_cl, "hop_bias": hop_bias, "field_V_per_um": field, "replicas": replicas,
            "events_per_replica": events, "c_v": n_vacancies / lattice.n_sites,
            "ratio_Br": float(mean[0]), "ratio_Br_sem": float(sem[0]),
            "ratio_Cl": float(mean[1]), "ratio_Cl_sem": float(sem[1]),
            "linear_v_Br": float(pred[0]), "linear_v_Cl": float(pred[1]),
            "uncorrelated_nonlinearity": float(np.sinh(hop_bias) / hop_bias)}


def tracer_cumulants(x_cl: float, hop_bias: float, hops_per_atom, *, cells=(12, 12, 12), n_vacancies: int = 4,
                     replicas: int = 8, seed: int = 0, material: Material | None = None) -> dict:
    """First three cumulants of the z displacement (in planes, a/2) of the Br and Cl atoms of a
    uniform alloy in a field of hop bias ``hop_bias``, after each of the ``hops_per_atom`` marks
    (total hops / atoms: a vacancy passes each atom about that many times), with replica errors.

    A linear-response (drift-diffusion) continuum propagates each atom with a Gaussian: kappa_3 = 0
    in a uniform alloy.  The kMC atom moves only when a vacancy passes it, in a correlated burst of
    hops biased by the field, so its distribution is a compound of few bursts: skewed along the
    drift, kappa_3 ~ (number of passages) x (third moment of a burst), skewness falling as
    1/sqrt(passages).  At zero field kappa_3 = 0 by symmetry.

    Returns {"hops_per_atom", "Br": {"k1", "k2", "k3", "skewness", and *_sem}, "Cl": {...}} with
    one entry per mark; k1 is signed (halides drift against E: negative for hop_bias > 0)."""
    material = Material() if material is None else material
    marks = np.asarray(hops_per_atom, dtype=float)
    if marks.ndim != 1 or marks.size == 0 or np.any(np.diff(marks) <= 0) or marks[0] <= 0:
        raise ParameterError(f"hops_per_atom must be increasing positive marks, got {hops_per_atom!r}")
    if not 0.0 < x_cl < 1.0:
        raise ParameterError(f"x_cl must be in (0, 1) for a two-species measurement, got {x_cl!r}")
    if hop_bias < 0.0:
        raise ParameterError(f"hop_bias must be >= 0, got {hop_bias!r}")
    if replicas < 2:
        raise ParameterError(f"replicas must be >= 2 for an error bar, got {replicas!r}")
    field = field_for_hop_bias(hop_bias, material)
    lattice = AnionLattice(*cells, periodic_z=True, lattice_constant_A=material.lattice_constant_A)
    n_atoms = lattice.n_sites - n_vacancies
    events = np.round(marks * n_atoms).astype(np.int64)
    k = np.empty((replicas, marks.size, 2, 3))
    seeds = np.random.SeedSequence(seed).spawn(replicas)
    for r in range(replicas):
        state = BulkState.random(lattice, x_cl, n_vacancies, seeds[r])
        eng = BulkKMC(state, material, field)
        done = 0
        for m, ev in enumerate(events):
            eng.run(int(ev - done))
            done = int(ev)
            occ = state.occupancy
            for s in (0, 1):
                dz = state.displacement[occ == s, 2].astype(float)
                mu = dz.mean()
                c = dz - mu
                k[r, m, s] = (mu, np.mean(c * c), np.mean(c ** 3))
    out = {"x_cl": x_cl, "hop_bias": hop_bias, "field_V_per_um": field, "replicas": replicas,
           "hops_per_atom": marks.tolist(), "c_v": n_vacancies / lattice.n_sites}
    skew = k[..., 2] / np.maximum(k[..., 1], 1e-300) ** 1.5
    for s, name in enumerate(("Br", "Cl")):
        d = {}
        for j, key in enumerate(("k1", "k2", "k3")):
            d[key] = k[:, :, s, j].mean(axis=0).tolist()
            d[key + "_sem"] = (k[:, :, s, j].std(axis=0, ddof=1) / np.sqrt(replicas)).tolist()
        d["skewness"] = skew[:, :, s].mean(axis=0).tolist()
        d["skewness_sem"] = (skew[:, :, s].std(axis=0, ddof=1) / np.sqrt(replicas)).tolist()
        out[name] = d
    return out


def step_profile_cumulants(z_edges_nm, profiles, window_nm, plane_nm: float) -> np.ndarray:
    """First three cumulants (planes, planes^2, planes^3) of the displacement density of a
    decreasing step profile binned on ``z_edges_nm``: p_i = x_(i-1) - x_i placed on the inner
    edge i, for the inner edges inside ``window_nm`` = (lo, hi).  For a step whose atoms move
    independently of their label, p is the distribution of their displacement (convolved with the
    bin).  ``profiles``: float[..., n_bins]; returns float[..., 3] = (k1, k2, k3), k1 the mean
    position (planes from z = 0)."""
    ze = np.asarray(z_edges_nm, dtype=float)
    x = np.asarray(profiles, dtype=float)
    if ze.ndim != 1 or x.shape[-1] != ze.size - 1:
        raise ParameterError(f"profiles need {ze.size - 1} bins on the last axis, got shape {x.shape}")
    lo, hi = window_nm
    inner = np.arange(1, ze.size - 1)
    sel = inner[(ze[inner] >= lo) & (ze[inner] <= hi)]
    if sel.size < 3:
        raise ParameterError(f"the window {window_nm} holds fewer than 3 bin edges")
    p = x[..., sel - 1] - x[..., sel]
    z = ze[sel] / plane_nm
    m = p.sum(axis=-1, keepdims=True)
    k1 = (p * z).sum(axis=-1, keepdims=True) / m
    d = z - k1
    k2 = (p * d ** 2).sum(axis=-1, keepdims=True) / m
    k3 = (p * d ** 3).sum(axis=-1, keepdims=True) / m
    return np.concatenate([k1, k2, k3], axis=-1)
