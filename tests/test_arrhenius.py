"""The arrhenius run type (coupling.arrhenius): the activation energy of a single vacancy's D
recovers the input barrier, the campaign end to end on a tiny config writes its table and plots,
and bad input gives one clear error."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from ionwire.coupling import arrhenius as ar
from ionwire.coupling import campaign as cp
from ionwire.structures.errors import ParameterError
from ionwire.structures.units import BOLTZMANN_EV_PER_K

RUNS = Path(__file__).resolve().parent.parent / "runs"


def _single_vacancy(temps, replicas, events, barrier):
    """One vacancy in a pure-Br host (4x4x4 cells, 192 sites) at every temperature."""
    return ar.load_config({
        "temperatures_K": temps, "replicas": replicas, "models": ["bulk"],
        "material": {"barriers_eV": {"Br_in_Br": barrier, "Br_in_Cl": barrier,
                                     "Cl_in_Br": 0.29, "Cl_in_Cl": 0.29}},
        "bulk": {"cells": [4, 4, 4], "composition": {"Cl": 0.0}, "vacancy_fraction": 1.0 / 192.0,
                 "events_per_replica": events, "blocks": 50, "seed": 11}})


def _fits(cfg):
    points = ar.expand(cfg)
    results = [ar.run(cfg, p, None) for p in points]
    assert all(r["vacancies"] == 1 for r in results)
    return ar.bulk_table(cfg, points, results)


def _check_recovers_barrier(cfg, barrier, max_err_eV):
    """E_a of the vacancy's D (an uncorrelated walk: D_V = 8 nu0 exp(-E/kT) s^2 / 6) and of the
    Br tracer D (f is T-independent in a pure lattice) within 3 stated standard errors of the
    input barrier (two-sided 99.7 %), and the vacancy's prefactor 8 nu0 s^2 / 6 within 3 of its
    standard errors; the stated error must be small enough for the check to mean something."""
    rows, fits = _fits(cfg)
    mat = cfg.bulk.material
    for key in ("D_vacancy_cm2_per_s", "D_tracer_cm2_per_s.Br"):
        fit = fits[key]
        ea, err = fit["activation_energy_eV"], fit["activation_energy_err_eV"]
        assert 0 < err < max_err_eV, (key, fit)
        assert abs(ea - barrier) < 3 * err, (key, ea, err)
    assert "not_fitted" in fits["D_tracer_cm2_per_s.Cl"]  # no Cl in the host
    fit = fits["D_vacancy_cm2_per_s"]
    s_cm = mat.lattice_constant_A * 1e-8 / math.sqrt(2.0)
    d0 = 8 * mat.attempt_frequency_per_s * s_cm**2 / 6.0
    assert abs(math.log(fit["prefactor"] / d0)) < 3 * fit["ln_prefactor_err"], (fit, d0)
    return fits


def test_single_vacancy_activation_energy_recovers_the_input_barrier():
    """6 temperatures 250-500 K, 10 replicas of 20000 hops each (~3 s)."""
    cfg = _single_vacancy([250.0, 300.0, 350.0, 400.0, 450.0, 500.0], 10, 20_000, 0.25)
    _check_recovers_barrier(cfg, 0.25, max_err_eV=0.01)


@pytest.mark.validate
def test_single_vacancy_activation_energy_recovers_another_barrier_precisely():
    """A barrier other than the default (0.31 eV), 8 temperatures, 16 replicas of 200000 hops:
    stated error ~1 meV."""
    temps = [250.0 + 40.0 * i for i in range(8)]
    cfg = _single_vacancy(temps, 16, 200_000, 0.31)
    _check_recovers_barrier(cfg, 0.31, max_err_eV=0.002)


TINY = """run = "arrhenius"
temperatures_K = [280.0, 300.0, 320.0]
replicas = 2
[bulk]
cells = [4, 4, 4]
composition = {Cl = 0.5}
vacancy_fraction = 0.01
events_per_replica = 20000
blocks = 10
seed = 3
[continuum]
duration_s = 600.0
field_V_per_um = 4.0
[continuum.numerics]
n_nodes = 200
"""


def test_campaign_end_to_end_writes_the_table_and_the_plots(tmp_path):
    path = tmp_path / "arrhenius.toml"
    path.write_text(TINY)
    spec = cp.load_spec(path)
    assert len(spec.points) == 3 * 2 + 3 * 2
    rep = cp.run_campaign(spec, tmp_path / "out", workers=1, progress=False)
    assert rep.n_new == 12 and not rep.failed
    out = tmp_path / "out"
    for name in ("arrhenius.json", "arrhenius_bulk.csv", "arrhenius_device.csv", "arrhenius_bulk.png",
                 "arrhenius_device.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "arrhenius_bulk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = json.loads((out / "arrhenius.json").read_text())
    assert table["temperatures_K"] == [280.0, 300.0, 320.0]
    bulk, device = table["bulk"], table["device"]
    assert [r["temperature_K"] for r in bulk["table"]] == [280.0, 300.0, 320.0]
    assert all(r["replicas"] == 2 for r in bulk["table"])
    # every fit of a positive observable has an activation energy and an error
    for key in ("D_vacancy_cm2_per_s", "D_tracer_cm2_per_s.Br", "D_tracer_cm2_per_s.Cl", "l_per_s.BrBr"):
        assert bulk["fits"][key]["activation_energy_err_eV"] > 0, key
    # the vacancy's D rises with T: a positive activation energy near the barriers (0.25-0.29 eV)
    assert 0.1 < bulk["fits"]["D_vacancy_cm2_per_s"]["activation_energy_eV"] < 0.5
    # beside the l_ab fits, the theory's activation energy (random alloy: between the two barriers)
    for name in ("BrBr", "ClCl"):
        assert 0.25 < bulk["fits"][f"l_per_s.{name}"]["theory_MAA_activation_energy_eV"] < 0.29
    # the device rows: the signed lengths of the runs, and the ratio formed from them
    runs = {(rec["point"]["temperature_K"], rec["point"]["field_V_per_um"]): rec["result"]
            for rec in rep.records if rec["point"]["model"] == "continuum"}
    for row in device["table"]:
        lp = runs[(row["temperature_K"], 4.0)]["migration_length_um"]
        lm = runs[(row["temperature_K"], -4.0)]["migration_length_um"]
        assert row["L_forward_um"] == lp and row["L_reverse_um"] == lm
        assert row["rectification_ratio"] == pytest.approx(lp / abs(lm))
        assert lp > 0  # forward: the front moves towards the Br segment
    with open(out / "arrhenius_device.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["temperature_K"]) for r in rows] == [280.0, 300.0, 320.0]
    assert rep.summary["headline"]


def test_plot_helpers_draw_into_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = [280.0, 300.0, 320.0]
    rows = [{"temperature_K": t, "x_v": 0.01, "replicas": 2,
             "D_vacancy_cm2_per_s": math.exp(-0.25 / (BOLTZMANN_EV_PER_K * t)),
             "D_vacancy_cm2_per_s_err": 0.01 * math.exp(-0.25 / (BOLTZMANN_EV_PER_K * t))} for t in T]
    fits = {"D_vacancy_cm2_per_s": {"activation_energy_eV": 0.25, "activation_energy_err_eV": 0.001,
                                    "prefactor": 1.0}}
    fig, axes = plt.subplots(1, 2)
    assert ar.plot_bulk(rows, fits, ax=axes) is fig
    assert len(axes[0].lines) >= 2
    drows = [{"temperature_K": t, "field_V_per_um": 4.0, "L_forward_um": 1.0, "L_reverse_um": -0.02,
              "rectification_ratio": 50.0} for t in T]
    fig2, axes2 = plt.subplots(1, 2)
    assert ar.plot_device(drows, {}, ax=axes2) is fig2
    plt.close("all")


@pytest.mark.parametrize("change, match", [
    ({"temperatures_K": [300.0]}, "at least 2 temperatures"),
    ({"temperatures_K": []}, "at least 2 temperatures"),
    ({"temperatures_K": [0.0, 300.0]}, r"temperatures_K\[0\] must be a temperature > 0 K"),
    ({"temperatures_K": [300.0, -20.0]}, r"temperatures_K\[1\] must be a temperature > 0 K"),
    ({"temperatures_K": [300.0, 300.0]}, "duplicate"),
    ({"temperatures_K": 300.0}, "expected a list"),
    ({"temperatures_K": None}, "expected a list"),
    ({"replicas": 1}, "replicas"),
    ({"models": ["bulk", "device"]}, "models"),
    ({"continuum": {"field_V_per_um": -4.0}}, "continuum.field_V_per_um"),
    ({"continuum": {"field_V_per_um": 0.0}}, "continuum.field_V_per_um"),
    ({"continuum": {"duration": 10.0}}, "unknown key continuum.duration"),
    ({"continuum": {"duration_s": -1.0}}, "continuum.duration_s"),
    ({"temperature": 300.0}, "unknown key temperature"),
    ({"sweep": {"x_cl": [0.5]}}, "sweep"),
    ({"material": {"temperature_K": 0.0}}, "temperature_K"),
])
def test_bad_input_gives_one_clear_error(change, match):
    base = {"temperatures_K": [280.0, 300.0], "replicas": 2}
    base.update(change)
    if base.get("temperatures_K") is None:
        del base["temperatures_K"]
    with pytest.raises(ParameterError, match=match):
        ar.load_config(base)


def test_a_temperature_with_no_dilute_vacancy_fraction_is_refused():
    with pytest.raises(ParameterError, match="not a site fraction below 1"):
        ar.load_config({"temperatures_K": [300.0, 900.0], "vacancies": {"equilibrium_fraction": {"Br": 1e-3}}})


def test_shipped_config_is_the_study_of_the_issue():
    """runs/arrhenius.toml: >= 6 temperatures, bulk kMC and continuum."""
    spec = cp.load_spec(RUNS / "arrhenius.toml")
    cfg = spec.config
    assert len(cfg.temperatures_K) >= 6 and set(cfg.models) == {"bulk", "continuum"}
    kinds = {p.point["model"] for p in spec.points}
    assert kinds == {"bulk", "continuum"}
    assert spec.run_name == "arrhenius"
