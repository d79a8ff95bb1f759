"""Agreement measures between an ensemble of kMC replicas and the continuum model.

Everything here is pure numpy on arrays; shapes are stated per function.  Conventions:

- profiles are compared on bins of whole unit cells along z (both models averaged over the same
  bins; the kMC average is site-weighted, which for whole cells is the plain length average);
- the kMC uncertainty of a bin is the standard error of the replica mean, sigma = s / sqrt(R)
  (s: sample standard deviation over the R independent replicas), raised to a floor where it is
  smaller: the quantisation of the measured quantity (rounding noise of one site of the bin,
  1/(N sqrt(12 R)), for fractions; ``PHI_FLOOR_KT`` kT/e for the potential), so that bins where
  every replica happens to agree exactly (far from the front, in the vacancy-poor Cl segment, at
  the imposed-potential edges) do not divide by zero.  The floor is below the binomial noise of a
  bin whenever it holds more than ~1/12 vacancy on average, so it does not deflate chi^2 there;
- reduced chi^2 = (1/N) sum_i (m_i - k_i)^2 / sigma_i^2 over the N compared bins: no parameter is
  fitted to the kMC, so the number of degrees of freedom is N.  Because sigma_i is itself estimated
  from R replicas, each term is (for a perfect model) a squared Student t with R-1 degrees of
  freedom, whose mean is (R-1)/(R-3), not 1: :func:`expected_chi2_per_dof` gives it, and the
  acceptance threshold 2 is meaningful only for R >= 8 (expectation <= 1.4).
- replica means and standard errors: :mod:`ionwire.structures.statistics`; the front (x_Br = 0.55)
  of binned profiles, kMC replicas and continuum alike: :func:`ionwire.structures.front.binned_front`.
"""
from __future__ import annotations

import numpy as np

from ionwire.structures.statistics import replica_mean_sem

# potential floor in units of kT/e (0.026 mV at 300 K): far below the kMC noise of any bin
PHI_FLOOR_KT = 1e-3


def bin_planes(plane_values: np.ndarray, plane_weights: np.ndarray, planes_per_bin: int) -> np.ndarray:
    """Weighted average of per-plane values over consecutive groups of ``planes_per_bin`` planes.

    plane_values float[..., P]; plane_weights float[P] (sites per plane); the trailing P mod
    planes_per_bin planes are dropped.  Returns float[..., P // planes_per_bin].
    """
    v = np.asarray(plane_values, dtype=float)
    w = np.asarray(plane_weights, dtype=float)
    nb = v.shape[-1] // planes_per_bin
    if nb < 1:
        raise ValueError(f"planes_per_bin = {planes_per_bin} exceeds the {v.shape[-1]} planes")
    n = nb * planes_per_bin
    vw = (v[..., :n] * w[:n]).reshape(*v.shape[:-1], nb, planes_per_bin).sum(axis=-1)
    ww = w[:n].reshape(nb, planes_per_bin).sum(axis=-1)
    return vw / ww


def bin_average_piecewise_linear(z: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Exact bin averages of the piecewise-linear interpolant of nodal values.

    z float[nz] increasing node positions; values float[..., nz]; edges float[nb + 1] inside
    [z[0], z[-1]] (clipped to it).  Returns float[..., nb].
    """
    z = np.asarray(z, dtype=float)
    vals = np.asarray(values, dtype=float)
    e = np.clip(np.asarray(edges, dtype=float), z[0], z[-1])
    zz = np.union1d(z, e)
    flat = vals.reshape(-1, z.size)
    out = np.empty((flat.shape[0], e.size - 1))
    for r in range(flat.shape[0]):
        vv = np.interp(zz, z, flat[r])
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (vv[1:] + vv[:-1]) * np.diff(zz))])
        ce = np.interp(e, zz, cum)
        with np.errstate(invalid="ignore", divide="ignore"):
            width = np.diff(e)
            out[r] = np.where(width > 0, np.diff(ce) / np.where(width > 0, width, 1.0),
                              np.interp(e[:-1], z, flat[r]))
    return out.reshape(*vals.shape[:-1], e.size - 1)


def fraction_floor(sites_per_bin: np.ndarray, replicas: int) -> np.ndarray:
    """Quantisation floor of a bin-averaged site fraction: 1/(N sqrt(12 R)) for N sites, R replicas."""
    return 1.0 / (np.asarray(sites_per_bin, dtype=float) * np.sqrt(12.0 * replicas))


def reduced_chi2(model: np.ndarray, kmc_mean: np.ndarray, kmc_sem: np.ndarray, floor=0.0,
                 mask: np.ndarray | None = None) -> np.ndarray:
    """Reduced chi^2 along the last axis: mean over bins of (model - mean)^2 / max(sem, floor)^2.

    model, kmc_mean, kmc_sem: float[..., nb]; floor broadcastable to them; mask bool[..., nb]
    selects compared bins (default all).  Returns float[...] (one value per leading index, e.g.
    per output time).  No parameter is fitted, so dof = number of compared bins.
    """
    m = np.asarray(model, dtype=float)
    k = np.asarray(kmc_mean, dtype=float)
    var = np.maximum(np.asarray(kmc_sem, dtype=float), np.asarray(floor, dtype=float)) ** 2
    terms = (m - k) ** 2 / var
    if mask is None:
        mask = np.ones(terms.shape, dtype=bool)
    mask = np.broadcast_to(mask, terms.shape)
    n = mask.sum(axis=-1)
    return np.where(n > 0, np.where(mask, terms, 0.0).sum(axis=-1) / np.maximum(n, 1), np.nan)


def expected_chi2_per_dof(replicas: int) -> float:
    """Mean of a squared Student t with R-1 dof, (R-1)/(R-3): the reduced chi^2 of a perfect
    model when the variances come from R replicas (inf for R <= 3)."""
    return (replicas - 1) / (replicas - 3) if replicas > 3 else float("inf")


def chi2_per_dof_spread(replicas: int, n_bins: int) -> float:
    """Standard deviation of the reduced chi^2 of a perfect model over n_bins independent bins
    with R-replica variances: sqrt(var(t^2_nu) / N), nu = R - 1,
    var(t^2_nu) = 3 nu^2 / ((nu-2)(nu-4)) - (nu/(nu-2))^2 (inf for R <= 5).  Correlated bins
    and few-count (Poisson) bins widen it further."""
    nu = replicas - 1
    if nu <= 4:
        return float("inf")
    var = 3.0 * nu**2 / ((nu - 2) * (nu - 4)) - (nu / (nu - 2)) ** 2
    return float(np.sqrt(var / n_bins))


def front_agreement(kmc_fronts: np.ndarray, continuum_front: np.ndarray, n_sigma: float = 2.0,
                    resolution: float = 0.0) -> dict:
    """kmc_fronts float[R, t] per-replica fronts, continuum_front float[t] (same unit).

    sigma = sqrt(sem^2 + resolution^2): the replica standard error of the mean front combined with
    the resolution of a front position (for a lattice, the quantisation h/sqrt(12) of positions on
    planes h apart: before the front has moved by a plane, every replica reports nearly the same
    crossing and the SEM alone would demand sub-lattice agreement that no lattice model has).
    Returns {"kmc_mean", "kmc_sem", "sigma", "continuum", "difference", "z_score" (difference /
    sigma), "z_score_sem_only", "within_n_sigma" (list of bool), "all_within" (bool), "n_sigma",
    "resolution"}.
    """
    mean, sem = replica_mean_sem(kmc_fronts)
    diff = np.asarray(continuum_front, dtype=float) - mean
    sigma = np.sqrt(sem**2 + resolution**2)
    z = diff / np.maximum(sigma, 1e-12)
    within = np.abs(z) <= n_sigma
    return {"kmc_mean": mean.tolist(), "kmc_sem": sem.tolist(), "sigma": sigma.tolist(),
            "continuum": np.asarray(continuum_front, dtype=float).tolist(),
            "difference": diff.tolist(), "z_score": z.tolist(),
            "z_score_sem_only": (diff / np.maximum(sem, 1e-12)).tolist(),
            "within_n_sigma": within.tolist(), "all_within": bool(np.all(within)), "n_sigma": n_sigma,
            "resolution": resolution}


def rectification(forward_kmc: np.ndarray, reverse_kmc: np.ndarray, forward_continuum: np.ndarray,
                  reverse_continuum: np.ndarray, n_sigma: float = 2.0, resolution: float = 0.0) -> dict:
    """Rectification ratio |migration length forward| / |migration length reverse| of a kMC
    ensemble and of the continuum.

    forward_kmc, reverse_kmc float[R, t]: per-replica front displacements from the initial front
    (same unit); forward_continuum, reverse_continuum float[t].  The kMC ratio is the ratio of the
    replica means, its error the first-order propagation of the two standard errors of the mean
    (independent replicas per polarity): err = ratio sqrt((sigma_f / L_f)^2 + (sigma_r / L_r)^2)
    with sigma^2 = sem^2 + resolution^2, the uncertainty of a front position that
    :func:`front_agreement` uses (resolution: the lattice quantisation h/sqrt(12));
    "kmc_ratio_err_sem_only" and "z_score_sem_only" leave the resolution out.  Returns per-time lists ("kmc_ratio_per_time", ...) and the values at the last time
    ("kmc_ratio", "kmc_ratio_err", "continuum_ratio", "z_score" = (continuum - kmc) / err,
    "within_n_sigma"), plus the mean migration lengths and their SEMs.
    """
    from ionwire.structures.statistics import replica_mean_sem

    mf, sf = replica_mean_sem(np.asarray(forward_kmc, dtype=float))
    mr, sr = replica_mean_sem(np.asarray(reverse_kmc, dtype=float))
    lf, lr = np.abs(mf), np.abs(mr)
    cf = np.abs(np.asarray(forward_continuum, dtype=float))
    cr = np.abs(np.asarray(reverse_continuum, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = lf / lr
        err0 = ratio * np.sqrt((sf / lf) ** 2 + (sr / lr) ** 2)
        err = ratio * np.sqrt((sf ** 2 + resolution ** 2) / lf ** 2 + (sr ** 2 + resolution ** 2) / lr ** 2)
        cratio = cf / cr
        z = (cratio - ratio) / err
        z0 = (cratio - ratio) / err0
    return {"kmc_ratio": float(ratio[-1]), "kmc_ratio_err": float(err[-1]), "continuum_ratio": float(cratio[-1]),
            "z_score": float(z[-1]), "within_n_sigma": bool(abs(z[-1]) <= n_sigma), "n_sigma": n_sigma,
            "kmc_ratio_err_sem_only": float(err0[-1]), "z_score_sem_only": float(z0[-1]),
            "resolution": resolution, "kmc_ratio_err_sem_only_per_time": err0.tolist(),
            "kmc_ratio_per_time": ratio.tolist(), "kmc_ratio_err_per_time": err.tolist(),
            "continuum_ratio_per_time": cratio.tolist(), "z_score_per_time": z.tolist(),
            "kmc_forward_length": lf.tolist(), "kmc_forward_length_sem": sf.tolist(),
            "kmc_reverse_length": lr.tolist(), "kmc_reverse_length_sem": sr.tolist(),
            "continuum_forward_length": cf.tolist(), "continuum_reverse_length": cr.tolist()}
