"""The halide pair as data: names built from the pair, the renamed TOML keys, the material sets.

- Relabelling: a Br | I run with the numbers of the Br | Cl defaults gives the same numbers
  (device kMC bit-identical with the same seed, continuum identical) and carries the I names.
- Every material set loads and runs the small device and a short continuum sweep.
- Every key of the older format gives one error naming its new key.
"""
import copy
import json

import numpy as np
import pytest
from small_configs import continuum_toml, tiny_device

from ionwire.structures import materials
from ionwire.structures.parameters import DeviceParameters, ParameterError, from_mapping, to_mapping

# the Br | Cl defaults as the explicit values of a Br | I set: same numbers, other names
SAME_NUMBERS_BR_I = {
    "set": "CsPbBr3 | CsPbI3", "lattice_constant_A": 5.8, "relative_permittivity": 25.0,
    "migration_barrier_eV": {"Br": 0.25, "I": 0.29}, "formation_energy_eV": {"Br": 1.32, "I": 1.44},
}


def _as_br_i(cfg: dict) -> dict:
    """A config mapping of the default Br | Cl pair rewritten for Br | I with the same numbers."""
    out = copy.deepcopy(cfg)
    mat = dict(out.get("material", {}))
    mat = {**SAME_NUMBERS_BR_I, **{k: ({"Br": v["Br"], "I": v["Cl"]} if isinstance(v, dict) else v)
                                   for k, v in mat.items()}}
    out["material"] = mat
    el = out.setdefault("electrodes", {})
    if "alpha_um_per_V_s" in el:
        a = el["alpha_um_per_V_s"]
        el["alpha_um_per_V_s"] = {"Br": a["Br"], "I": a["Cl"]}
    return out


# ---------------------------------------------------------------------------------------------
# old keys: one error naming the new key
RENAMED = [
    ({"vacancies": {"equilibrium_fraction_Br": 1e-3}}, "vacancies.equilibrium_fraction_Br",
     "vacancies.equilibrium_fraction = {Br = ...}"),
    ({"electrodes": {"alpha_Br_um_per_V_s": 1e-5}}, "electrodes.alpha_Br_um_per_V_s",
     "electrodes.alpha_um_per_V_s = {Br = ..., Cl = ...}"),
    ({"electrodes": {"alpha_Cl_um_per_V_s": 1e-7}}, "electrodes.alpha_Cl_um_per_V_s",
     "electrodes.alpha_um_per_V_s = {Br = ..., Cl = ...}"),
    ({"material": {"formation_energy_Br_eV": 1.3}}, "material.formation_energy_Br_eV",
     "material.formation_energy_eV = {Br = ..., Cl = ...}"),
    ({"material": {"formation_energy_Cl_eV": 1.4}}, "material.formation_energy_Cl_eV",
     "material.formation_energy_eV = {Br = ..., Cl = ...}"),
] + [({"material": {"barriers": {f"{x}_in_{y}_eV": 0.3}}}, f"material.barriers.{x}_in_{y}_eV",
      f"material.barriers_eV = {{{x}_in_{y} = ...")
     for x in ("Br", "Cl") for y in ("Br", "Cl")]


@pytest.mark.parametrize("table,old,new", RENAMED, ids=[r[1] for r in RENAMED])
def test_an_old_key_gives_one_error_naming_the_new_key(table, old, new, tmp_path):
    with pytest.raises(ParameterError) as exc:
        from_mapping(DeviceParameters, table)
    text = str(exc.value)
    assert text.startswith(f"{old} is no longer a key") and new in text
    # the same through a config file and the command's loader
    from ionwire.kmc.device import load_config

    section, body = next(iter(table.items()))
    lines = [f"[{section}]"]
    for k, v in body.items():
        lines.append(f"{k} = {v}" if not isinstance(v, dict) else
                     f"{k} = {{{', '.join(f'{a} = {b}' for a, b in v.items())}}}")
    path = tmp_path / "old.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParameterError, match="no longer a key") as exc:
        load_config(path)
    assert new in str(exc.value) and str(exc.value).count("no longer a key") == 1


def test_per_halide_tables_are_keyed_by_the_pair():
    with pytest.raises(ParameterError, match=r"unknown key electrodes\.alpha_um_per_V_s\.Cl \(the halides are Br, I"):
        from_mapping(DeviceParameters, {"material": SAME_NUMBERS_BR_I,
                                        "electrodes": {"alpha_um_per_V_s": {"Br": 1.0, "Cl": 2.0}}})
    with pytest.raises(ParameterError, match=r"electrodes\.alpha_um_per_V_s\.Cl is missing"):
        from_mapping(DeviceParameters, {"electrodes": {"alpha_um_per_V_s": {"Br": 1.0}}})
    with pytest.raises(ParameterError, match="material.halides: 'X' is not a halogen"):
        from_mapping(DeviceParameters, {"material": {"halides": ["Br", "X"]}})
    with pytest.raises(ParameterError, match="material.set must be given for the halides"):
        from_mapping(DeviceParameters, {"material": {"halides": ["Br", "I"]}})
    with pytest.raises(ParameterError, match="first halide"):
        from_mapping(DeviceParameters, {"vacancies": {"equilibrium_fraction": {"Cl": 1e-3}}})
    # the file layout round-trips, names built from the pair
    p = from_mapping(DeviceParameters, _as_br_i({"electrodes": {"alpha_um_per_V_s": {"Br": 1.0, "Cl": 2.0}},
                                                  "vacancies": {"equilibrium_fraction": {"Br": 1e-3}}}))
    m = to_mapping(p)
    assert m["electrodes"]["alpha_um_per_V_s"] == {"Br": 1.0, "I": 2.0}
    assert m["material"]["barriers_eV"] == {"Br_in_Br": 0.25, "Br_in_I": 0.25, "I_in_Br": 0.29, "I_in_I": 0.29}
    assert m["vacancies"]["equilibrium_fraction"] == {"Br": 1e-3}
    assert from_mapping(DeviceParameters, m) == p
    assert p.material.jump_frequencies_per_s().keys() == {"Br", "I"}


# ---------------------------------------------------------------------------------------------
# material sets
def test_material_sets_cite_every_value_and_refuse_a_missing_one():
    assert materials.names()[0] == materials.DEFAULT_SET.name == "CsPbBr3 | CsPbCl3 (Kong et al. 2020)"
    assert len({s.halides for s in materials.SETS.values()}) >= 2  # Br | Cl and Br | I
    assert any(s.name.startswith("MA") for s in materials.SETS.values())  # a hybrid pair
    for s in materials.SETS.values():
        assert set(s.values) == set(materials.KEYS)
        for key, v in s.values.items():
            assert v.unit and v.source, (s.name, key)
            if v.missing():
                assert "missing" in v.source, (s.name, key)
            if isinstance(v.value, dict):
                assert set(v.value) <= set(s.halides), (s.name, key)
    # the default set is the parameter set's default (and the paper's numbers)
    d = DeviceParameters()
    ms = materials.DEFAULT_SET
    assert d.material.lattice_constant_A == ms.value("material.lattice_constant_A") == 5.8
    assert d.material.formation_energy_eV == (1.32, 1.44)
    assert d.material.migration_barrier_eV == (0.25, 0.29)
    assert d.electrodes.alphas_um_per_V_s == (1.3e-5, 3.8e-7)
    assert d.vacancies.reference_fraction == pytest.approx(1e-7 / 3)
    # a key the set has no source for: one error naming it
    with pytest.raises(ParameterError, match=r"^material\.lattice_constant_A must be given: the material set "
                                             r"'CsPbBr3 \| CsPbI3' has no value"):
        from_mapping(DeviceParameters, {"material": {"set": "CsPbBr3 | CsPbI3"}})
    with pytest.raises(ParameterError, match=r"^material\.formation_energy_eV must be given.* for I \(Br: "):
        from_mapping(DeviceParameters, {"material": {"set": "CsPbBr3 | CsPbI3", "lattice_constant_A": 6.0,
                                                     "relative_permittivity": 20.0}})
    with pytest.raises(ParameterError, match="unknown material set"):
        from_mapping(DeviceParameters, {"material": {"set": "CsPbF3"}})
    # overridable key by key: the set's values stay where the config says nothing
    p = from_mapping(DeviceParameters, {"material": {"set": "MAPbBr3 | MAPbI3", "lattice_constant_A": 6.1,
                                                     "formation_energy_eV": {"Br": 1.1, "I": 1.2}},
                                        "vacancies": {"equilibrium_fraction": {"Br": 1e-6}},
                                        "electrodes": {"alpha_um_per_V_s": {"Br": 1e-5, "I": 1e-6}}})
    assert p.material.relative_permittivity == 30.0 and p.material.lattice_constant_A == 6.1
    assert p.material.halides == ("Br", "I")


# values a test gives where a set has none (test inputs, not material data); the electrode rate
# is small enough for the slowest set (0.6 eV barriers: vacancies 1e6 times slower than with the
# default set's) to carry the injected vacancies away within the 600 s sweep
FILL = {"material.lattice_constant_A": 6.0, "material.relative_permittivity": 25.0,
        "material.migration_barrier_eV": 0.28, "material.formation_energy_eV": 1.35,
        "vacancies.equilibrium_fraction": 1e-7 / 3, "electrodes.alpha_um_per_V_s": 1e-10}


def _completed(ms: materials.MaterialSet, base: dict) -> dict:
    """``base`` with [material] set = ms and every value that neither ``base`` nor the set gives
    filled in (FILL); per-halide tables of ``base`` (written for Br, Cl) are rekeyed to the set's pair."""
    out = copy.deepcopy(base)
    out.setdefault("material", {})["set"] = ms.name
    for key, entry in ms.values.items():
        section, name = key.split(".")
        table = out.setdefault(section, {})
        if isinstance(table.get(name), dict):  # a value of base (kMC-scale choices): same numbers, the set's names
            old = list(table[name].values())
            table[name] = dict(zip(ms.halides, old))
            continue
        if not entry.missing() or name in table:
            continue
        if isinstance(entry.value, dict):
            table[name] = {h: (FILL[key] if v is None else v) for h, v in entry.value.items()}
        else:
            table[name] = FILL[key]
    return out


@pytest.mark.parametrize("name", materials.names())
def test_every_material_set_runs_the_small_device_and_a_continuum_sweep(name, tmp_path):
    from ionwire.continuum import io as cio
    from ionwire.continuum.experiment import load_config as load_continuum, run_sweep
    from ionwire.kmc.device import load_config as load_device, run_device
    from ionwire.kmc.h5md import open_trajectory

    ms = materials.get(name)
    a, b = ms.halides
    # an event budget, not a duration: the sets' hop rates differ by 1e6 (barriers 0.25 to 0.6 eV)
    small = tiny_device(duration_s=1.0)
    small["kmc"]["max_events"] = 2000
    small["output"]["frame_interval_s"] = 0.5
    dev = load_device(_completed(ms, small))
    assert dev.params.material.halides == ms.halides
    summary = run_device(dev, tmp_path / "d.h5")
    assert summary["events"] == 2000
    assert summary["counters"][f"hops_{a}"] + summary["counters"][f"hops_{b}"] > 0
    with open_trajectory(tmp_path / "d.h5") as traj:
        assert traj.halides == ms.halides
        total = traj.observable(f"x_{a}") + traj.observable(f"x_{b}") + traj.observable("x_V")
        np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)
    import tomllib

    cont = _completed(ms, tomllib.loads(continuum_toml(fields=(-2.0, 2.0))))
    ccfg = load_continuum(cont)
    out = run_sweep(ccfg, tmp_path / "c.h5", calibrate_first=False)
    lengths = out["migration_length_um"]
    assert len(lengths) == 2 and all(np.isfinite(lengths))
    res = cio.read_results(tmp_path / "c.h5")
    assert [r.halides for r in res] == [ms.halides] * 2
    assert f"x_{b.lower()}" in res[0].arrays


# ---------------------------------------------------------------------------------------------
# relabelling
def test_a_relabelled_device_run_is_bit_identical_and_carries_the_new_names(tmp_path):
    from ionwire.kmc.device import load_config, run_device
    from ionwire.kmc.h5md import open_trajectory
    from ionwire.structures.atoms import trajectory_atoms

    base = tiny_device(duration_s=2e-8, seed=11)
    # equal formation energies: the second halide's segment holds vacancies too, so both species hop
    base["material"] = {"formation_energy_eV": {"Br": 1.32, "Cl": 1.32}}
    cl = load_config(base)
    iod = load_config(_as_br_i(base))
    assert iod.params.material.halides == ("Br", "I") and iod.params.material.set == "CsPbBr3 | CsPbI3"
    s_cl = run_device(cl, tmp_path / "cl.h5")
    s_i = run_device(iod, tmp_path / "i.h5")
    assert s_cl["events"] == s_i["events"] > 1000 and s_cl["time_s"] == s_i["time_s"]
    assert s_i["counters"] == {k.replace("_Cl", "_I"): v for k, v in s_cl["counters"].items()}
    assert s_i["counters"]["hops_I"] > 100 and s_i["counters"]["hops_Br"] > 100 and "refilled_I" in s_i["counters"]
    with open_trajectory(tmp_path / "cl.h5") as a, open_trajectory(tmp_path / "i.h5") as b:
        assert b.halides == ("Br", "I") and b.observable_names[:2] == ("x_Br", "x_I")
        assert a.n_frames == b.n_frames >= 3
        np.testing.assert_array_equal(a.times_s, b.times_s)
        for i in range(a.n_frames):
            np.testing.assert_array_equal(a.species(i), b.species(i))
        np.testing.assert_array_equal(a.observable("x_Br"), b.observable("x_Br"))
        np.testing.assert_array_equal(a.observable("x_Cl"), b.observable("x_I"))
        for name in ("x_V", "charge", "potential"):
            np.testing.assert_array_equal(a.observable(name), b.observable(name))
        ca, cb = a.counters(), b.counters()
        assert set(cb) == {k.replace("_Cl", "_I") for k in ca}
        for k, v in ca.items():
            np.testing.assert_array_equal(v, cb[k.replace("_Cl", "_I")])
        with pytest.raises(KeyError, match="x_I"):
            b.observable("x_Cl")
        # ASE: the second halide is iodine (atomic number 53 on disk)
        last = b.n_frames - 1
        atoms_i = next(trajectory_atoms(b, [last]))
        atoms_cl = next(trajectory_atoms(a, [last]))
        sym_i, sym_cl = np.array(atoms_i.get_chemical_symbols()), np.array(atoms_cl.get_chemical_symbols())
        assert "I" in sym_i and "Cl" not in sym_i
        np.testing.assert_array_equal(sym_i == "I", sym_cl == "Cl")
        np.testing.assert_array_equal(atoms_i.positions, atoms_cl.positions)
    import h5py

    with h5py.File(tmp_path / "i.h5", "r") as f:
        assert "x_I" in f["observables"] and "x_Cl" not in f["observables"]
        assert set(np.unique(f["particles/anions/species/value"][-1])) <= {0, 35, 53}
        assert json.loads(f["parameters"].attrs["halides"]) == ["Br", "I"]


def test_a_relabelled_continuum_sweep_is_identical_and_carries_the_new_names(tmp_path):
    import tomllib

    import h5py

    from ionwire.continuum import io as cio
    from ionwire.continuum.experiment import load_config, run_sweep

    base = tomllib.loads(continuum_toml(fields=(-4.0, 4.0)))
    base["electrodes"] = {"alpha_um_per_V_s": {"Br": 1.3e-5, "Cl": 3.8e-7}}
    base["vacancies"] = {"equilibrium_fraction": {"Br": 1e-7 / 3}}
    cl = load_config(base)
    iod = load_config(_as_br_i(base))
    out_cl = run_sweep(cl, tmp_path / "cl.h5", calibrate_first=False)
    out_i = run_sweep(iod, tmp_path / "i.h5", calibrate_first=False)
    assert out_cl["migration_length_um"] == out_i["migration_length_um"]
    assert out_cl["migration_length_um"][1] > 0  # forward: the front moves towards the first halide
    assert out_i["halides"] == ["Br", "I"] and "alpha_I_um_per_V_s" in out_i["parameters"]
    assert "cl_uptake" not in out_i and out_i["i_uptake"] == out_cl["cl_uptake"] > 0
    assert out_i["i_uptake_definition"].startswith("volume-weighted mean x_I over the original Br segment")
    for a, b in zip(cio.read_results(tmp_path / "cl.h5"), cio.read_results(tmp_path / "i.h5")):
        assert a.halides == ("Br", "Cl") and b.halides == ("Br", "I")
        assert set(b.arrays) == {k.replace("_cl", "_i") for k in a.arrays}
        for k, v in a.arrays.items():
            np.testing.assert_array_equal(v, b.arrays[k.replace("_cl", "_i")])
        assert "x_i" in b.to_xarray() and b.to_xarray()["x_i"].attrs["long_name"] == "I site fraction"
    with h5py.File(tmp_path / "i.h5", "r") as f:
        assert "x_i" in f["runs/0"] and "x_cl" not in f["runs/0"]
        assert json.loads(f.attrs["halides"]) == ["Br", "I"]


def test_the_readme_example_of_another_pair_loads_and_the_command_lists_the_sets(capsys):
    import re
    import tomllib
    from pathlib import Path

    from ionwire.coupling.cli import main

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [b for b in re.findall(r"^```toml\n(.*?)^```", text, flags=re.S | re.M) if "set = " in b]
    assert blocks
    p = from_mapping(DeviceParameters, tomllib.loads(blocks[0]))
    assert p.material.halides == ("Br", "I") and p.electrodes.alphas_um_per_V_s == (1.3e-5, 3.8e-7)
    assert main(["materials", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed["sets"]] == materials.names()
    assert listed["sets"][0]["values"]["material.formation_energy_eV"]["value"] == {"Br": 1.32, "Cl": 1.44}
    assert main(["materials"]) == 0
    out = capsys.readouterr().out
    assert "[M83]" in out and "missing" in out and 'set = "MAPbBr3 | MAPbI3"' in out
    assert main(["materials", "--set", "CsPbF3"]) == 2


def test_outputs_tied_to_the_papers_pair_refuse_another_pair():
    from ionwire.continuum.io import ContinuumResult
    from ionwire.continuum.pl import kymograph

    z = np.linspace(0.0, 10.0, 21)
    xb = np.where(z < 5.0, 1.0, 0.0)[None, :].repeat(2, axis=0)
    ok = ContinuumResult(z, np.array([0.0, 1.0]), xb, 1 - xb, 0 * xb, 0 * xb)
    assert kymograph(ok)["wavelength_nm"].shape[0] == 2
    other = ContinuumResult(z, np.array([0.0, 1.0]), xb, 1 - xb, 0 * xb, 0 * xb, halides=("Br", "I"))
    with pytest.raises(ParameterError, match="no kymograph for the halides Br, I"):
        kymograph(other)
    from ionwire.continuum.experiment import load_config
    from ionwire.continuum.figures import paper_figures

    cfg = load_config(_as_br_i({"run": "continuum", "electrodes": {"alpha_um_per_V_s": {"Br": 1e-5, "Cl": 1e-7}}}))
    with pytest.raises(ParameterError, match=r"paper figures .* reproduce the experiment of CsPbBr3 \| CsPbCl3"):
        paper_figures(cfg, "unused")


def test_a_continuum_profile_becomes_atoms_of_the_pair():
    from ionwire.structures.atoms import sample_continuum_window

    z = np.linspace(0.0, 1.0, 101)
    x_br = np.where(z < 0.5, 1.0, 0.0)
    atoms = sample_continuum_window(z, x_br, np.zeros_like(z), n_cells_z=20, halides=("Br", "I"), rng=1)
    symbols = set(atoms.get_chemical_symbols())
    assert {"Br", "I", "Cs", "Pb"} == symbols
    default = sample_continuum_window(z, x_br, np.zeros_like(z), n_cells_z=20, rng=1)
    np.testing.assert_array_equal(np.array(atoms.get_chemical_symbols()) == "I",
                                  np.array(default.get_chemical_symbols()) == "Cl")


def test_the_sensitivity_study_of_the_papers_wire_refuses_another_set():
    import tomllib
    from pathlib import Path

    from ionwire.continuum.sensitivity import load_config

    d = tomllib.loads((Path(__file__).resolve().parent.parent / "runs" / "sensitivity.toml").read_text())
    assert load_config(d).params.material.set == materials.DEFAULT_SET.name
    d = _as_br_i(dict(d, electrodes=dict(d.get("electrodes", {}), alpha_um_per_V_s={"Br": 1e-5, "Cl": 1e-7})))
    with pytest.raises(ParameterError, match=r"^material\.set: the sensitivity factors .* this config's set is "
                                             r"'CsPbBr3 \| CsPbI3'"):
        load_config(d)


# ---------------------------------------------------------------------------------------------
# the bulk kMC: results, the bulk and onsager campaigns and the Arrhenius study named from the pair
def _renamed_keys(obj):
    """``obj`` with every dict key of the Br | Cl names rewritten for Br | I (Cl -> I, x_cl -> x_i)."""
    if isinstance(obj, dict):
        return {k.replace("x_cl", "x_i").replace("Cl", "I"): _renamed_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renamed_keys(v) for v in obj]
    return obj


def _without_wall(d: dict) -> dict:
    return {k: (_without_wall(v) if isinstance(v, dict) else v) for k, v in d.items()
            if k not in ("wall_s", "events_per_second", "run_wall_s", "events_per_second_per_run", "headline")}


def test_a_relabelled_bulk_run_gives_the_same_numbers_under_the_new_names():
    from ionwire.kmc.observables import measure_bulk, result_to_dict, theory_l
    from ionwire.structures.parameters import Material

    cl = Material()
    iod = from_mapping(Material, SAME_NUMBERS_BR_I, "material")
    assert iod.halides == ("Br", "I") and iod.barriers == cl.barriers
    args = dict(cells=(5, 5, 5), x_cl=0.4, n_vacancies=3, field_V_per_um=3.0, n_events=20_000, n_replicas=3,
                seed=7, n_blocks=10)
    r_cl = measure_bulk(material=cl, **args)
    r_i = measure_bulk(material=iod, **args)
    d_cl, d_i = result_to_dict(r_cl, theory_l(r_cl)), result_to_dict(r_i, theory_l(r_i))
    assert set(d_i["l"]) == {"BrBr", "BrI", "II"} and set(d_i["f"]) == {"Br", "I"}
    assert "x_i" in d_i["parameters"] and "x_cl" not in d_i["parameters"]
    assert set(d_i["l_theory_MAA"]) == {"BrBr", "BrI", "II"} and set(d_i["mobility"]) == {"Br", "I", "V"}
    assert _without_wall(d_i) == _renamed_keys(_without_wall(d_cl))  # the same numbers, bit for bit
    assert d_cl["f"]["Cl"] > 0 and d_i["D_tracer"]["I"] > 0  # both species hopped
    for a, b in zip(r_cl.replicas, r_i.replicas):
        assert b.hops == {"Br": a.hops["Br"], "I": a.hops["Cl"]} and a.hops["Cl"] > 0


def test_the_bulk_command_names_its_output_from_the_material_file(tmp_path, capsys):
    from ionwire.coupling.cli import main

    common = ["bulk", "--cells", "4", "4", "4", "--vacancies", "2", "--events", "5000", "--replicas", "2",
              "--seed", "3", "--blocks", "5"]
    assert main(common + ["--x-cl", "0.25", "--json"]) == 0
    d_cl = json.loads(capsys.readouterr().out)
    mat = tmp_path / "br_i.toml"
    mat.write_text("[material]\n" + "".join(
        f"{k} = {json.dumps(v) if not isinstance(v, dict) else '{' + ', '.join(f'{a} = {b}' for a, b in v.items()) + '}'}\n"
        for k, v in SAME_NUMBERS_BR_I.items()))
    assert main(common + ["--material", str(mat), "--fraction", "0.25", "--json"]) == 0
    d_i = json.loads(capsys.readouterr().out)
    assert _without_wall(d_i) == _renamed_keys(_without_wall(d_cl)) and d_i["parameters"]["x_i"] == 0.25
    assert main(common + ["--material", str(mat), "--fraction", "0.25"]) == 0
    text = capsys.readouterr().out
    assert "l_BrI (1/s)" in text and "x_I = 0.25" in text and "Cl" not in text
    # --x-cl is the Cl fraction: refused for Br, I (one error naming --fraction)
    assert main(common + ["--material", str(mat), "--x-cl", "0.25"]) == 2
    assert "give --fraction (the I fraction" in capsys.readouterr().err


def _bulk_campaign(config: dict, tmp_path, name: str):
    from ionwire.kmc.runtypes import BulkRun

    cfg = BulkRun.load(config)
    points = BulkRun.expand(cfg)
    results = [BulkRun.run(cfg, p, None) for p in points]
    out = tmp_path / name
    out.mkdir()
    return points, results, BulkRun.reduce(cfg, points, results, out)


def test_a_relabelled_bulk_campaign_gives_the_same_table_under_the_new_names(tmp_path):
    base = {"run": "bulk", "bulk": {"cells": [4, 4, 4], "composition": {"Cl": 0.5}, "vacancy_fraction": 0.01,
                                    "events_per_replica": 4000, "blocks": 4, "seed": 5},
            "sweep": {"composition": [0.25, 0.75], "replicas": 2}}
    iod = copy.deepcopy(base)
    iod["material"] = dict(SAME_NUMBERS_BR_I)
    iod["bulk"]["composition"] = {"I": 0.5}
    _, r_cl, s_cl = _bulk_campaign(base, tmp_path, "cl")
    _, r_i, s_i = _bulk_campaign(iod, tmp_path, "i")
    assert [r["seed"] for r in r_cl] == [r["seed"] for r in r_i]
    assert _renamed_keys([_without_wall(r) for r in r_cl]) == [_without_wall(r) for r in r_i]
    assert _without_wall(s_i) == _renamed_keys(_without_wall(s_cl))
    row = s_i["table"][0]
    assert set(row["l_per_s"]) == {"BrBr", "BrI", "II"} and set(row["l_theory_MAA_per_s"]) == {"BrBr", "BrI", "II"}
    assert row["D_tracer_cm2_per_s"]["I"] > 0
    # the seed of a point is that of its earlier spelling x_cl: a campaign draws the streams it drew before
    from ionwire.structures.seeds import point_seed

    assert r_cl[0]["seed"] == point_seed(5, {"x_cl": 0.25, "replica": 0})


def test_a_relabelled_onsager_table_campaign_gives_the_same_table(tmp_path):
    from ionwire.coupling.parameterize import OnsagerTableRun, build_tables, load_config

    base = {"bulk": {"cells": [4, 4, 4], "vacancy_fraction": 0.01, "events_per_replica": 4000, "blocks": 4},
            "sweep": {"preset": ["random_alloy"], "composition": [0.0, 0.5, 1.0], "replicas": 2}}
    iod = dict(base, material=dict(SAME_NUMBERS_BR_I))
    tables = []
    for cfg_map in (base, iod):
        cfg = load_config(cfg_map)
        points = OnsagerTableRun.expand(cfg)
        tables.append(build_tables(cfg, points, [OnsagerTableRun.run(cfg, p, None) for p in points])["random_alloy"])
    a, b = tables
    np.testing.assert_array_equal(a.l_per_s, b.l_per_s)
    np.testing.assert_array_equal(a.l_replicas_per_s, b.l_replicas_per_s)
    np.testing.assert_array_equal(a.x_cl, b.x_cl)
    assert a.w_per_s == b.w_per_s and a.l_per_s[1, 0] > 0 and a.l_per_s[1, 2] > 0
    assert a.halides == ("Br", "Cl") and b.halides == ("Br", "I") and b.columns == ("BrBr", "BrI", "II")
    # the file names its attributes and coefficients from the pair and reads back
    import h5py

    from ionwire.structures.onsager_table import tables_from_file, write_onsager_tables

    write_onsager_tables(tmp_path / "cl.h5", {"random_alloy": a}, {})
    write_onsager_tables(tmp_path / "i.h5", {"random_alloy": b}, {})
    with h5py.File(tmp_path / "i.h5", "r") as f:
        g = f["tables/random_alloy"]
        assert "w_I_per_s" in g.attrs and "w_Cl_per_s" not in g.attrs and json.loads(g.attrs["halides"]) == ["Br", "I"]
        assert [c.decode() if isinstance(c, bytes) else c for c in g["coefficient"][()]] == ["BrBr", "BrI", "II"]
    back = tables_from_file(tmp_path / "i.h5")[0]["random_alloy"]
    assert back.halides == ("Br", "I") and back.w_per_s == b.w_per_s
    np.testing.assert_array_equal(back.l_per_s, b.l_per_s)
    assert set(b.to_xarray().attrs) >= {"w_Br_per_s", "w_I_per_s"}
    # a file written before the pair was data (no halides attribute) reads as Br, Cl
    with h5py.File(tmp_path / "cl.h5", "a") as f:
        del f["tables/random_alloy"].attrs["halides"]
        material = json.loads(f["tables/random_alloy"].attrs["material_json"])
        material.pop("halides")
        f["tables/random_alloy"].attrs["material_json"] = json.dumps(material)
    old = tables_from_file(tmp_path / "cl.h5")[0]["random_alloy"]
    assert old.halides == ("Br", "Cl") and old.w_per_s == a.w_per_s and old.columns == ("BrBr", "BrCl", "ClCl")


def test_a_relabelled_arrhenius_study_gives_the_same_fits_under_the_new_names():
    from ionwire.coupling import arrhenius as ar

    base = {"temperatures_K": [300.0, 400.0], "replicas": 2, "models": ["bulk"],
            "bulk": {"cells": [4, 4, 4], "composition": {"Cl": 0.5}, "vacancy_fraction": 0.01,
                     "events_per_replica": 4000, "blocks": 4, "seed": 3}}
    iod = copy.deepcopy(base)
    iod["material"] = dict(SAME_NUMBERS_BR_I)
    iod["bulk"]["composition"] = {"I": 0.5}
    iod["electrodes"] = {"alpha_um_per_V_s": {"Br": 1.3e-5, "I": 3.8e-7}}  # the loader builds the device too
    out = []
    for m in (base, iod):
        cfg = ar.load_config(m)
        points = ar.expand(cfg)
        out.append(ar.bulk_table(cfg, points, [ar.run(cfg, p, None) for p in points]))
    (rows_cl, fits_cl), (rows_i, fits_i) = out
    assert [_renamed_keys(r) for r in rows_cl] == rows_i
    # the fits (and the reasons given where one is not made) name the pair's coefficients
    assert json.dumps(fits_cl).replace("Cl", "I") == json.dumps(fits_i)
    assert "D_tracer_cm2_per_s.I" in fits_i and "l_per_s.BrI" in fits_i and "x_i_actual" in rows_i[0]
    assert fits_i["D_tracer_cm2_per_s.I"]["activation_energy_eV"] > 0


BULK_RENAMED = [
    ({"bulk": {"x_cl": 0.5}}, "bulk.x_cl is no longer a key", "bulk.composition = {Cl = ...}"),
    ({"material": SAME_NUMBERS_BR_I, "bulk": {"x_cl": 0.5}}, "bulk.x_cl is no longer a key",
     "bulk.composition = {I = ...}"),
    ({"x_cl": 0.5}, "x_cl: moved to [bulk]", "bulk.composition = {<second halide> = ...}"),
    ({"sweep": {"x_cl": [0.5]}}, "sweep.x_cl: renamed", "sweep.composition"),
    ({"material": SAME_NUMBERS_BR_I, "bulk": {"composition": {"Cl": 0.5}}}, "unknown key bulk.composition.Cl",
     "allowed: I"),
    ({"bulk": {"composition": {"Br": 0.5}}}, "bulk.composition is the fraction of the second halide", "{Cl = ...}"),
    ({"bulk": {"composition": 0.5}}, "bulk.composition must be a table keyed by halide", "composition = {Cl = ...}"),
]


@pytest.mark.parametrize("table,old,new", BULK_RENAMED, ids=[str(r[0]) for r in BULK_RENAMED])
def test_an_old_bulk_key_gives_one_error_naming_the_new_key(table, old, new):
    from ionwire.kmc.runtypes import BulkRun

    with pytest.raises(ParameterError) as exc:
        BulkRun.load(dict(table, run="bulk"))
    text = str(exc.value)
    assert text.startswith(old) and new in text, text


def test_the_comparison_outputs_name_the_first_halides_fraction_from_the_pair(tmp_path):
    """Every shipped set's first halide is Br (x_br stays); a pair whose first halide is another
    one gets its own names in the summary and in report.h5, with their units."""
    from ionwire.coupling import report as R
    from ionwire.coupling.io import read_report, write_report

    summary = {"chi2_per_dof": {"forward": {"x_br": [1.0], "x_v": [2.0]}}, "note": "x_br"}
    arrays = {"forward": {"chi2_per_dof_x_br": np.array([1.0]), "kmc_mean_x_br": np.ones((1, 2)),
                          "times_s": np.array([1.0]), "z_nm": np.array([0.0, 1.0])}}
    assert R.named_for_pair(summary, ("Br", "I")) == summary
    s_i = R.named_for_pair(summary, ("I", "Br"))
    assert s_i == {"chi2_per_dof": {"forward": {"x_i": [1.0], "x_v": [2.0]}}, "note": "x_br"}
    a_i = R.named_for_pair(arrays, ("I", "Br"))
    assert set(a_i["forward"]) == {"chi2_per_dof_x_i", "kmc_mean_x_i", "times_s", "z_nm"}
    write_report(tmp_path / "r.h5", {"forward": {}}, a_i, "x = 1\n")
    import h5py

    with h5py.File(tmp_path / "r.h5", "r") as f:
        names = []
        f.visit(names.append)
        ds = next(f[n] for n in names if n.endswith("kmc_mean_x_i"))
        long_name = ds.attrs["long_name"]
        assert (long_name.decode() if isinstance(long_name, bytes) else long_name).startswith("I site fraction")
    _, groups = read_report(tmp_path / "r.h5")
    np.testing.assert_array_equal(groups["forward"]["kmc_mean_x_i"], np.ones((1, 2)))


def test_the_electrode_kinetics_compositions_are_keyed_by_the_second_halide():
    import tomllib
    from pathlib import Path

    from ionwire.coupling.compare import load_config

    base = tomllib.loads((Path(__file__).resolve().parent.parent / "runs" / "validate.toml").read_text())
    base["electrode_kinetics"] = {"fields_V_per_um": [1.0, 2.0], "composition": {"Cl": [0.0, 0.5]}}
    cfg = load_config(base)
    assert cfg.electrode_kinetics.x_cl == (0.0, 0.5)
    assert to_mapping(cfg)["electrode_kinetics"]["composition"] == {"Cl": [0.0, 0.5]}
    # the same compositions for Br | I: keyed by I, written back under I
    br_i = _as_br_i({k: v for k, v in base.items() if k != "electrode_kinetics"})
    br_i["electrode_kinetics"] = {"fields_V_per_um": [1.0, 2.0], "composition": {"I": [0.0, 0.5]}}
    cfg_i = load_config(br_i)
    assert cfg_i.params.material.halides == ("Br", "I")
    assert cfg_i.electrode_kinetics.x_cl == (0.0, 0.5)
    assert to_mapping(cfg_i)["electrode_kinetics"]["composition"] == {"I": [0.0, 0.5]}
    # the old key, and the wrong halide, give one error naming the new key
    with pytest.raises(ParameterError, match=r"electrode_kinetics\.x_cl is no longer a key: write "
                                             r"electrode_kinetics\.composition = \{I = \[\.\.\.\]\}"):
        load_config({**br_i, "electrode_kinetics": {"x_cl": [0.0, 0.5]}})
    with pytest.raises(ParameterError, match=r"electrode_kinetics\.composition: write \{I = \[x, \.\.\.\]\}"):
        load_config({**br_i, "electrode_kinetics": {"composition": {"Cl": [0.0, 0.5]}}})
