"""A synthetic confocal photoluminescence (PL) kymograph of the wire (the look of Fig. 1d).

Composition -> PL peak: the local Cl fraction of the halide sites y = x_Cl / (x_Br + x_Cl) sets
the emission energy

    E_PL(y) = (1 - y) E_Br + y E_Cl - b y (1 - y),     lambda_PL = h c / E_PL,

with the end points from the paper (Kong et al., Nano Lett. 2020, Fig. 1b: CsPbBr3 emits at
526 nm, CsPbCl3 at 420 nm, i.e. E_Br = 2.357 eV, E_Cl = 2.952 eV; h c = 1239.842 eV nm).  The
paper's own composition-wavelength correlation (its Fig. S7) is not in the text we have, and we
did not find a bowing parameter b of CsPb(Br1-xClx)3 that we could read and cite, so the default
is b = 0: linear interpolation in energy (Vegard-like); ``bowing_eV`` sets another value.

Confocal blur: the emission energy profile, resampled on a uniform grid (``dz_um``), is
convolved with a Gaussian point-spread function of full width at half maximum ``psf_fwhm_um``
(default 0.3 um, about the diffraction limit of a confocal microscope at ~450 nm; sigma = FWHM /
2.3548), normalised near the wire ends so that the ends are not darkened.  The peak wavelength
of the blurred signal is taken as h c over the PSF-weighted mean emission energy (spectra of
equal width and brightness everywhere; no carrier funnelling to the Br-rich side).  The
kymograph is this wavelength against position (horizontal) and time (vertical), drawn with the
colours of the visible spectrum (wavelength -> RGB by the piecewise-linear approximation of
D. Bruton, "Color Science", 1996, as used by many spectrum plots).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ionwire.structures.errors import ParameterError

HC_EV_NM = 1239.841984
PL_BR_NM = 526.0  # paper, Fig. 1b: CsPbBr3 segment
PL_CL_NM = 420.0  # paper, Fig. 1b: CsPbCl3 segment
PSF_FWHM_UM = 0.3
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def pl_energy_eV(y_cl, bowing_eV: float = 0.0) -> np.ndarray:
    """Emission energy (eV) of CsPb(Br1-yCly)3 at Cl fraction y_cl (float or array in [0, 1];
    module docstring)."""
    y = np.clip(np.asarray(y_cl, dtype=float), 0.0, 1.0)
    e_br, e_cl = HC_EV_NM / PL_BR_NM, HC_EV_NM / PL_CL_NM
    return (1.0 - y) * e_br + y * e_cl - bowing_eV * y * (1.0 - y)


def pl_peak_wavelength_nm(y_cl, bowing_eV: float = 0.0) -> np.ndarray:
    """PL peak wavelength (nm) at Cl fraction y_cl: h c / :func:`pl_energy_eV`."""
    return HC_EV_NM / pl_energy_eV(y_cl, bowing_eV)


def cl_fraction_from_wavelength(wavelength_nm, bowing_eV: float = 0.0) -> np.ndarray:
    """The inverse of :func:`pl_peak_wavelength_nm` (the Cl fraction a PL peak indicates)."""
    e = HC_EV_NM / np.asarray(wavelength_nm, dtype=float)
    e_br, e_cl = HC_EV_NM / PL_BR_NM, HC_EV_NM / PL_CL_NM
    if bowing_eV == 0.0:
        return (e - e_br) / (e_cl - e_br)
    # b y^2 + (e_cl - e_br - b) y + (e_br - e) = 0, the root in [0, 1]
    a, bq, c = bowing_eV, e_cl - e_br - bowing_eV, e_br - e
    return (-bq + np.sqrt(bq * bq - 4 * a * c)) / (2 * a)


def blur(z_um: np.ndarray, values: np.ndarray, psf_fwhm_um: float = PSF_FWHM_UM,
         dz_um: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(z_grid float64[m], blurred float64[..., m]): ``values`` (float64[..., nz] on the nodes
    z_um) linearly resampled on a uniform grid of spacing <= dz_um and convolved with the
    Gaussian PSF of FWHM psf_fwhm_um, normalised by the blurred indicator of the wire (so a
    uniform profile stays uniform up to the ends)."""
    if not (math.isfinite(psf_fwhm_um) and psf_fwhm_um > 0):
        raise ParameterError(f"psf_fwhm_um must be a positive length, got {psf_fwhm_um!r}")
    if not (math.isfinite(dz_um) and 0 < dz_um <= psf_fwhm_um):
        raise ParameterError(f"dz_um must be in (0, psf_fwhm_um], got {dz_um!r}")
    z = np.asarray(z_um, dtype=float)
    v = np.asarray(values, dtype=float)
    m = int(math.ceil((z[-1] - z[0]) / dz_um)) + 1
    zg = np.linspace(z[0], z[-1], m)
    flat = v.reshape(-1, v.shape[-1])
    res = np.stack([np.interp(zg, z, row) for row in flat])
    h = zg[1] - zg[0]
    sigma = psf_fwhm_um / FWHM_PER_SIGMA
    half = int(math.ceil(4 * sigma / h))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) * h / sigma) ** 2)
    k /= k.sum()
    norm = np.convolve(np.ones(m), k, mode="same")
    out = np.stack([np.convolve(row, k, mode="same") / norm for row in res])
    return zg, out.reshape(v.shape[:-1] + (m,))


def kymograph(result, psf_fwhm_um: float = PSF_FWHM_UM, bowing_eV: float = 0.0, dz_um: float = 0.01) -> dict:
    """The synthetic PL kymograph of a ContinuumResult: {"z_um" float64[m], "times_s"
    float64[nt], "wavelength_nm" float64[nt, m] (blurred PL peak), "wavelength_sharp_nm"
    float64[nt, nz] (unblurred, on the nodes), "psf_fwhm_um", "bowing_eV",
    "green_length_um" float64[nt] (the length of wire with a peak above the mid wavelength
    (526 + 420) / 2 nm: the green segment of Fig. 1d)}."""
    pair = tuple(getattr(result, "halides", ("Br", "Cl")))
    if pair != ("Br", "Cl"):
        raise ParameterError(f"the PL peak wavelengths are those of CsPbBr3 ({PL_BR_NM:g} nm) and CsPbCl3 "
                             f"({PL_CL_NM:g} nm); no kymograph for the halides {', '.join(pair)}")
    xb, xc = np.asarray(result.x_br), np.asarray(result.x_cl)
    y = xc / np.maximum(xb + xc, 1e-300)
    e = pl_energy_eV(y, bowing_eV)
    zg, eb = blur(result.z_um, e, psf_fwhm_um, dz_um)
    lam = HC_EV_NM / eb
    mid = 0.5 * (PL_BR_NM + PL_CL_NM)
    green = (lam > mid).sum(axis=-1) * (zg[1] - zg[0])
    return {"z_um": zg, "times_s": np.asarray(result.times_s), "wavelength_nm": lam,
            "wavelength_sharp_nm": HC_EV_NM / e, "psf_fwhm_um": float(psf_fwhm_um), "bowing_eV": float(bowing_eV),
            "green_length_um": green}


def wavelength_rgb(wavelength_nm) -> np.ndarray:
    """float64[..., 3] RGB in [0, 1] of visible light (380-780 nm; D. Bruton's approximation,
    with his intensity fall-off at the ends of the visible range)."""
    w = np.asarray(wavelength_nm, dtype=float)
    r = np.zeros_like(w)
    g = np.zeros_like(w)
    b = np.zeros_like(w)
    s = (w >= 380) & (w < 440)
    r[s], b[s] = -(w[s] - 440) / 60.0, 1.0
    s = (w >= 440) & (w < 490)
    g[s], b[s] = (w[s] - 440) / 50.0, 1.0
    s = (w >= 490) & (w < 510)
    g[s], b[s] = 1.0, -(w[s] - 510) / 20.0
    s = (w >= 510) & (w < 580)
    r[s], g[s] = (w[s] - 510) / 70.0, 1.0
    s = (w >= 580) & (w < 645)
    r[s], g[s] = 1.0, -(w[s] - 645) / 65.0
    s = (w >= 645) & (w <= 780)
    r[s] = 1.0
    f = np.ones_like(w)
    s = (w >= 380) & (w < 420)
    f[s] = 0.3 + 0.7 * (w[s] - 380) / 40.0
    s = (w > 700) & (w <= 780)
    f[s] = 0.3 + 0.7 * (780 - w[s]) / 80.0
    f[(w < 380) | (w > 780)] = 0.0
    return np.stack([r * f, g * f, b * f], axis=-1)


def plot_kymograph(results: Sequence, path=None, psf_fwhm_um: float = PSF_FWHM_UM, bowing_eV: float = 0.0,
                   titles: Sequence[str] | None = None, axes=None) -> list[dict]:
    """One panel per ContinuumResult: the blurred PL peak wavelength against position
    (horizontal, um) and time (vertical, h, increasing downwards as in Fig. 1d), in spectral
    colours, with a wavelength colour bar.  Draws into ``axes`` (one Axes per result) if given;
    writes the PNG at ``path`` if given; returns the kymographs (:func:`kymograph`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, Normalize

    if not results:
        raise ParameterError("plot_kymograph: no results to draw")
    kys = [kymograph(r, psf_fwhm_um, bowing_eV) for r in results]
    lo, hi = PL_CL_NM - 10.0, PL_BR_NM + 10.0
    cmap = ListedColormap(wavelength_rgb(np.linspace(lo, hi, 256)))
    norm = Normalize(lo, hi)
    if axes is None:
        fig, axes = plt.subplots(1, len(kys), figsize=(3.2 * len(kys) + 1.0, 3.9), dpi=140, squeeze=False)
        fig.subplots_adjust(bottom=0.2, top=0.9, left=0.1, right=0.85, wspace=0.25)
    else:
        axes = np.asarray(axes, dtype=object).reshape(1, len(kys))
        fig = axes[0, 0].figure
    for k, (ky, ax) in enumerate(zip(kys, axes[0])):
        t_h = ky["times_s"] / 3600.0
        edges_t = np.concatenate(([t_h[0]], 0.5 * (t_h[1:] + t_h[:-1]), [t_h[-1]]))
        z = ky["z_um"]
        edges_z = np.concatenate(([z[0]], 0.5 * (z[1:] + z[:-1]), [z[-1]]))
        im = ax.pcolormesh(edges_z, edges_t, ky["wavelength_nm"], cmap=cmap, norm=norm, shading="flat",
                           rasterized=True)
        ax.set_ylim(edges_t[-1], edges_t[0])
        ax.set_facecolor("black")
        ax.set_xlabel("position along the wire ($\\mu$m)")
        if k == 0:
            ax.set_ylabel("time (h)")
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    cb = fig.colorbar(im, ax=list(axes[0]), fraction=0.05)
    cb.set_label("PL peak wavelength (nm)")
    fig.text(0.01, 0.015, f"confocal PSF FWHM {psf_fwhm_um:g} $\\mu$m; E(x) linear in energy"
             + (f", bowing {bowing_eV:g} eV" if bowing_eV else ""), fontsize=6)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
    return kys


def _title(res) -> str:
    meta = res.metadata
    bias = meta.get("bias")
    if isinstance(bias, str):
        import json

        try:
            bias = json.loads(bias)
        except ValueError:
            bias = None
    if isinstance(bias, dict) and "field_V_per_um" in bias:
        return f"{bias['field_V_per_um']:+g} V/$\\mu$m"
    if isinstance(bias, dict) and bias:
        return next(iter(bias))
    if "field_V_per_um" in meta:
        return f"{float(meta['field_V_per_um']):+g} V/$\\mu$m"
    return ""


def plot_kymograph_file(h5_path, path, runs: Sequence[int] | None = None, psf_fwhm_um: float = PSF_FWHM_UM,
                        bowing_eV: float = 0.0) -> dict:
    """The kymograph of the runs of a continuum result file (all by default, or the indices in
    ``runs``) at ``path``; returns {"runs", "psf_fwhm_um", "bowing_eV", "green_length_um"
    (per run: [start, end]), "wavelength_range_nm"}."""
    from .io import ResultFileError, read_results

    results = read_results(h5_path)
    if not results:
        raise ResultFileError(f"{h5_path}: holds no complete run")
    idx = list(range(len(results))) if runs is None else list(runs)
    for i in idx:
        if not 0 <= i < len(results):
            raise ParameterError(f"run {i}: {h5_path} holds runs 0..{len(results) - 1}")
    chosen = [results[i] for i in idx]
    kys = plot_kymograph(chosen, path, psf_fwhm_um, bowing_eV, titles=[_title(r) for r in chosen])
    return {"runs": idx, "psf_fwhm_um": psf_fwhm_um, "bowing_eV": bowing_eV, "figure": str(path),
            "green_length_um": [[float(k["green_length_um"][0]), float(k["green_length_um"][-1])] for k in kys],
            "wavelength_range_nm": [float(min(k["wavelength_nm"].min() for k in kys)),
                                    float(max(k["wavelength_nm"].max() for k in kys))]}
