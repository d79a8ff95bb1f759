"""Bulk kMC measurement: tracer D and f, Onsager l_ab, vacancy D, drift and mobility.

Runs independent replicas of a periodic random alloy of a halide pair with vacancies
(docs/model.md sections 4, 6 and 20) and prints each observable with its standard error over the
replicas; every key and label is named from the pair.  Example:

    ionwire bulk --cells 16 16 16 --fraction 0.5 --vacancies 120 --events 1000000 --replicas 4 --json

The pair: Br, Cl (the default material set) or the [material] table of a TOML file given by
--material (halides, set and values, as in a run config).  --fraction is the second halide's
fraction of the halide sites; --x-cl is its spelling for a pair whose second halide is Cl.
Barriers: --preset random_alloy|host with the material's end-member barriers (0.25 / 0.29 eV by
default), or --barriers E_AA E_AB E_BA E_BB (eV: the first halide's hop in an octahedron rich in
the first / second halide, the second halide's hop in one rich in the first / second).
"""
from __future__ import annotations

import argparse
import json
import math


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cells", nargs=3, type=int, default=[16, 16, 16], metavar=("NX", "NY", "NZ"),
                        help="periodic supercell in unit cells (default 16 16 16)")
    parser.add_argument("--material", default=None, metavar="TOML",
                        help="a TOML file whose [material] table (halides, set, values) gives the material "
                             "(default: the default set, Br, Cl); the options below override its values")
    parser.add_argument("--fraction", type=float, default=None,
                        help="the second halide's fraction of the halide sites (default 0.5)")
    parser.add_argument("--x-cl", type=float, default=None,
                        help="the Cl fraction: --fraction for a pair whose second halide is Cl")
    parser.add_argument("--vacancies", type=int, default=None,
                        help="number of vacancies (default 1%% of the anion sites)")
    parser.add_argument("--preset", default=None, help="barrier preset: random_alloy (default) or host")
    parser.add_argument("--barriers", nargs=4, type=float, default=None,
                        metavar=("E_AA", "E_AB", "E_BA", "E_BB"),
                        help="the four barriers (eV) for halides A, B: E_AA = A hop in A-rich, E_AB = A hop in "
                             "B-rich, ... (Br_in_Br Br_in_Cl Cl_in_Br Cl_in_Cl for Br, Cl)")
    parser.add_argument("--nu0", type=float, default=None, help="attempt frequency (1/s, default 1e13)")
    parser.add_argument("--temperature", type=float, default=None, help="temperature (K, default 300)")
    parser.add_argument("--field", type=float, default=0.0, help="uniform field along z (V/um, default 0)")
    parser.add_argument("--events", type=float, default=1e6, help="hops per replica (default 1e6)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up hops per replica (default events/10)")
    parser.add_argument("--replicas", type=int, default=4, help="independent replicas (default 4)")
    parser.add_argument("--blocks", type=int, default=20, help="blocks per replica for l_ab (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


BYTES_PER_SITE = 64  # occupancy, tracer displacements, vacancy arrays, event tree


def _count(value: float, name: str, minimum: int) -> int:
    from ionwire.coupling.cli import UserError

    if not math.isfinite(value) or value != int(value) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def build_material(args):
    """ionwire.structures.parameters.Material from the CLI options (ParameterError on bad values):
    the [material] table of --material (or the defaults), then --nu0, --temperature, --preset and
    --barriers over it."""
    import dataclasses

    from ionwire.structures.parameters import Barriers, Material, from_mapping, read_toml

    data = {}
    if args.material is not None:
        mapping, _ = read_toml(args.material)
        data = mapping.get("material", {})
        if not isinstance(data, dict):
            from ionwire.structures.errors import ParameterError

            raise ParameterError(f"{args.material}: [material] must be a table, got {data!r}")
        data = dict(data)
    for key, value in (("attempt_frequency_per_s", args.nu0), ("temperature_K", args.temperature),
                       ("preset", args.preset)):
        if value is not None:
            data[key] = value
    if args.preset is not None:
        data.pop("barriers_eV", None)  # a preset given here sets the four barriers
    material = from_mapping(Material, data, "material")
    if args.barriers is not None:
        material = dataclasses.replace(material, barriers=Barriers(*args.barriers))
    return material


def composition(args, halides) -> float:
    """The second halide's fraction from --fraction or (its Cl spelling) --x-cl; default 0.5."""
    from ionwire.coupling.cli import UserError

    if args.fraction is not None and args.x_cl is not None:
        raise UserError("--fraction and --x-cl name the same value: give one")
    if args.x_cl is not None and halides[1] != "Cl":
        raise UserError(f"--x-cl is the Cl fraction; the halides are {', '.join(halides)}: "
                        f"give --fraction (the {halides[1]} fraction of the halide sites)")
    x = args.fraction if args.fraction is not None else args.x_cl
    flag = "--x-cl" if args.x_cl is not None else "--fraction"
    x = 0.5 if x is None else x
    if not 0.0 <= x <= 1.0:
        raise UserError(f"{flag} must be in [0, 1], got {x}")
    return x


def run(args) -> int:
    from ionwire.coupling.cli import UserError
    from ionwire.kmc.observables import measure_bulk, result_to_dict, theory_l

    material = build_material(args)
    events = _count(args.events, "--events", 1)
    warmup = None if args.warmup is None else _count(args.warmup, "--warmup", 0)
    if args.replicas < 1:
        raise UserError(f"--replicas must be >= 1, got {args.replicas}")
    x = composition(args, material.halides)
    if any(c < 2 for c in args.cells):
        raise UserError(f"--cells must be at least 2 2 2, got {' '.join(map(str, args.cells))}")
    n_sites = 3 * args.cells[0] * args.cells[1] * args.cells[2]
    if args.vacancies is not None and not 1 <= args.vacancies <= n_sites:
        raise UserError(f"--vacancies must be in [1, {n_sites}] (nothing hops without a vacancy), got {args.vacancies}")
    from ionwire.structures.parameters import check_field, check_memory, check_seed

    check_field(args.field, "--field")
    check_seed(args.seed, "--seed")
    check_memory(n_sites * BYTES_PER_SITE, f"the bulk lattice ({' x '.join(map(str, args.cells))} cells, "
                                           f"{n_sites:.3g} sites)")
    if args.blocks < 1 or args.blocks > events:
        raise UserError(f"--blocks must be in [1, events], got {args.blocks}")
    from ._output import stop_at_once_on_interrupt

    try:
        with stop_at_once_on_interrupt():  # writes no file: Ctrl-C may end it at once
            result = measure_bulk(tuple(args.cells), x, args.vacancies, material, args.field, events,
                                  args.replicas, args.seed, warmup, args.blocks)
    except ValueError as exc:  # e.g. no hop possible
        raise UserError(str(exc)) from None
    from ionwire.structures.parameters import Barriers

    random_alloy = (material.preset == "random_alloy"
                    and material.barriers == Barriers.preset("random_alloy", *material.migration_barrier_eV))
    theory = theory_l(result) if (random_alloy and args.barriers is None) else None
    out = result_to_dict(result, theory)
    if args.json:
        print(json.dumps(out))
        return 0

    def pm(v, e, fmt="{:.4g}"):
        return fmt.format(v) + ("" if e is None else " +- " + fmt.format(e))

    from ionwire.kmc.observables import fraction_key, pair_names, species_names

    a, b = species_names(material.halides)
    p = out["parameters"]
    print(f"bulk kMC: {p['cells']} cells, x_{b} = {p[fraction_key(material.halides)]}, {p['vacancies']} vacancies, {material.preset} "
          f"{p['barriers_eV']} eV, nu0 = {p['nu0_per_s']:.3g} /s, T = {p['temperature_K']} K, E = {p['field_V_per_um']} V/um")
    print(f"  {out['events']} events in {out['wall_s']:.2f} s ({out['events_per_second']:.3g} events/s), "
          f"{result.n_replicas} replicas")
    print(f"  w (1/s):        {a} {out['w'][a]:.4g}   {b} {out['w'][b]:.4g}")
    for k, _, _ in pair_names(material.halides):
        th = "" if theory is None else f"   (MAA theory {theory[k]:.4g})"
        print(f"  l_{k} (1/s):   {pm(out['l'][k], out['l_err'][k])}{th}")
    for k in (a, b):
        print(f"  {k}: f = {pm(out['f'][k], out['f_err'][k])}   D_tracer = "
              f"{pm(out['D_tracer'][k], out['D_tracer_err'][k])} cm^2/s")
    print(f"  vacancy D = {pm(out['D_vacancy'], out['D_vacancy_err'])} cm^2/s")
    if out["mobility"] is not None:
        for k in (a, b, "V"):
            print(f"  {k}: drift = {pm(out['drift_velocity'][k], out['drift_velocity_err'][k])} cm/s   mobility = "
                  f"{pm(out['mobility'][k], out['mobility_err'][k])} cm^2/(V s)")
    return 0
