"""A tiny but real run type for the campaign engine tests (registered only in tests).

Each run estimates the volume of the unit ball in ``dimension`` dimensions by Monte Carlo
(``samples`` uniform points in the cube [-1, 1]^d); ``reduce`` combines the replicas of each
dimension into a mean with its standard error, which the tests compare with the exact
V_d = pi^(d/2) / Gamma(d/2 + 1).  ``sleep_s`` stretches runs so that campaigns can be killed
mid-way; ``fail_dimension`` makes the runs of one dimension raise (failure handling); the
file OUT/crash_dimension in the campaign folder, if it exists, names a dimension whose runs make
the worker process die.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ionwire.structures.parameters import ParameterError, from_mapping, require
from ionwire.structures.runtype import Axis, sweep_points
from ionwire.structures.seeds import point_seed
from ionwire.structures.statistics import mean_and_error


@dataclass(frozen=True)
class ToyConfig:
    samples: int = 20_000
    seed: int = 0
    sleep_s: float = 0.0
    fail_dimension: int = 0
    dimension: int = 2
    sweep: Any = None

    def __post_init__(self):
        require(1 <= self.samples <= 10**8, f"samples: must be in [1, 1e8], got {self.samples}")
        require(0.0 <= self.sleep_s <= 60.0, f"sleep_s: must be in [0, 60] s, got {self.sleep_s}")
        require(1 <= self.dimension <= 10, f"dimension: must be in [1, 10], got {self.dimension}")


AXES = {"dimension": Axis(int, 1, 10), "samples": Axis(int, 1, 10**8)}


class Toy:
    name = "toy"

    @staticmethod
    def load(mapping):
        return from_mapping(ToyConfig, mapping)

    @staticmethod
    def expand(config):
        return sweep_points(config.sweep, AXES)

    @staticmethod
    def run(config, point, outdir):
        d = point.get("dimension", config.dimension)
        n = point.get("samples", config.samples)
        if d == config.fail_dimension:
            raise RuntimeError(f"injected failure for dimension {d}")
        # OUT/crash_dimension (outdir: OUT/runs/.partial/x)
        trigger = outdir.parents[2] / "crash_dimension" if len(outdir.parents) > 2 else None
        if trigger is not None and trigger.exists() and trigger.read_text().strip() == str(d):
            import os

            os._exit(3)  # a worker that dies (segfault, OOM kill), not an exception
        rng = np.random.default_rng(point_seed(config.seed, point))
        x = rng.uniform(-1.0, 1.0, size=(n, d))
        inside = float(np.mean(np.sum(x * x, axis=1) <= 1.0))
        if config.sleep_s:
            time.sleep(config.sleep_s)
        (outdir / "samples.json").write_text(json.dumps({"n": n, "inside": inside}))
        return {"dimension": d, "volume": inside * 2.0**d, "samples": n}

    @staticmethod
    def reduce(config, points, results, outdir):
        by_d: dict[int, list[float]] = {}
        for r in results:
            by_d.setdefault(r["dimension"], []).append(r["volume"])
        out = {}
        for d, v in sorted(by_d.items()):
            mean, err = mean_and_error(v)
            out[str(d)] = {"volume": mean, "volume_err": float("nan") if err is None else err, "replicas": len(v),
                           "exact": math.pi ** (d / 2) / math.gamma(d / 2 + 1)}
        (outdir / "volumes.json").write_text(json.dumps(out))
        return {"volumes": out}


class ToyWithPrepare(Toy):
    """The same, with a prepare() step whose result the runs use (a scale factor, = 1)."""

    name = "toy_prepare"
    calls_file = None

    @staticmethod
    def prepare(config):
        import os

        marker = os.environ.get("TOY_PREPARE_LOG")
        if marker:
            with open(marker, "a") as fh:
                fh.write("prepare\n")
        return {"scale": 1.0}

    @staticmethod
    def bind(config, prepared):
        if prepared.get("scale") != 1.0:
            raise ParameterError("bad prepared value")
        return config
