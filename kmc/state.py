"""State of a kMC system: :class:`BulkState` (periodic bulk) and :class:`DeviceState` (device wire).

Bulk: occupancy, vacancies, displacements, clock and random stream.

Memory layout (all numpy, consumed by the numba kernels of :mod:`ionwire.kmc._kernels`):

==========================  ======================  ================================================
``occupancy``               uint8[n_sites]          0 Br, 1 Cl, 2 vacancy
``displacement``            int32[n_sites, 3]       displacement (half-units a/2) of the atom now on
                                                    the site since the last reset: it moves with the
                                                    atom (tracer tracking without atom ids); on a
                                                    vacancy site, ``[slot, 0, 0]`` (site -> slot)
``vacancy_cell``            int64[n_vac, 4]         (i, j, k, s) of the vacancy in each event slot
``vacancy_site``            int64[n_vac]            its site index
``vacancy_displacement``    int64[n_vac, 3]         displacement of each vacancy (half-units)
``collective_displacement`` int64[2, 3]             summed displacement of all Br / all Cl atoms
``hops``                    int64[2]                hops made by Br / Cl atoms
``clock``                   float64[1]              simulated time (s)
``rng_state``               uint64[4]               xoshiro256++ state of the event loop
==========================  ======================  ================================================

That is 13 bytes per site plus O(n_vac) (see :attr:`BulkState.nbytes`; the event tree is owned
by the engine).  int32 displacements hold +-2^31 half-units (about 0.6 m): they cannot overflow.

Randomness: ``seed`` (int or :class:`numpy.random.SeedSequence`) is split by SeedSequence into
one stream for the initial configuration (a numpy Generator) and one for the event loop (the
xoshiro256++ state).  Same seed -> same configuration and same trajectory.  ``checkpoint()``
returns plain arrays (including ``rng_state``) from which :meth:`BulkState.from_checkpoint`
rebuilds a state that continues the run bit for bit.

Device (:class:`DeviceState`, driven by :class:`ionwire.kmc.device.DeviceSimulation`): the integer
state of a bounded wire -- occupancy, vacancy slots grouped in per-plane linked lists, the bond
integers L and Lambda of :mod:`ionwire.kmc.electrostatics`, time, next-event time, event counters,
RNG and the fixed background charge -- plus the event structures derived from it (hop rates,
plane sums, bond factors, the plane sum tree), in the named groups the kernels of
:mod:`ionwire.kmc._device_kernels` take.  ``checkpoint()`` returns the integer state only; the
engine recomputes everything else from it, so a restart continues bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ionwire.structures.lattice import AnionLattice

from . import _device_kernels as dk
from ._kernels import VACANCY, rng_state_from_seed
from .h5md import TrajectoryError

BR, CL = 0, 1
_ARRAYS = ("occupancy", "displacement", "vacancy_cell", "vacancy_site", "vacancy_displacement",
           "collective_displacement", "hops", "clock", "rng_state")


def _seed_sequences(seed) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    config, events = ss.spawn(2)
    return config, events


@dataclass(eq=False)
class BulkState:
    """A periodic bulk configuration and its running observables (see module docstring)."""

    lattice: AnionLattice
    occupancy: np.ndarray
    displacement: np.ndarray
    vacancy_cell: np.ndarray
    vacancy_site: np.ndarray
    vacancy_displacement: np.ndarray
    collective_displacement: np.ndarray
    hops: np.ndarray
    clock: np.ndarray
    rng_state: np.ndarray
    n_events: int = field(default=0)

    # construction ----------------------------------------------------------------------------
    @classmethod
    def random(cls, lattice: AnionLattice, x_cl: float, n_vacancies: int, seed=None) -> "BulkState":
        """Random alloy: ``n_vacancies`` vacancies on random sites, the other sites Cl with
        probability ``x_cl`` (exactly round(x_cl * n_atoms) Cl atoms), else Br."""
        if not lattice.periodic_z:
            raise ValueError("the bulk engine needs a lattice periodic along z")
        if not (0.0 <= x_cl <= 1.0):
            raise ValueError(f"x_cl must be in [0, 1], got {x_cl!r}")
        n = lattice.n_sites
        if isinstance(n_vacancies, bool) or not isinstance(n_vacancies, (int, np.integer)) or not 0 <= n_vacancies <= n:
            raise ValueError(f"n_vacancies must be an integer in [0, {n}], got {n_vacancies!r}")
        config_ss, events_ss = _seed_sequences(seed)
        rng = np.random.default_rng(config_ss)
        # the permutation of rng.permutation(n), in 4 bytes per site where n allows: shuffle
        # draws the same random numbers whatever the dtype of the array
        perm = np.arange(n, dtype=np.uint32 if n <= np.iinfo(np.uint32).max else np.int64)
        rng.shuffle(perm)
        n_atoms = n - int(n_vacancies)
        n_cl = int(round(x_cl * n_atoms))
        occ = np.zeros(n, dtype=np.uint8)
        occ[perm[:n_vacancies]] = VACANCY
        occ[perm[n_vacancies:n_vacancies + n_cl]] = CL
        del perm
        return cls._from_own_occupancy(lattice, occ, rng_state_from_seed(events_ss))

    @classmethod
    def from_occupancy(cls, lattice: AnionLattice, occupancy: np.ndarray, rng_state=None) -> "BulkState":
        """State with the given occupancy (uint8[n_sites], codes 0/1/2), zero displacements and
        time; ``rng_state`` is a uint64[4] xoshiro256++ state, or a seed for one."""
        occ = np.asarray(occupancy)
        if occ.shape != (lattice.n_sites,):
            raise ValueError(f"occupancy must have shape ({lattice.n_sites},), got {occ.shape}")
        if occ.dtype != np.uint8:
            raise ValueError(f"occupancy must be uint8, got {occ.dtype}")
        if occ.size and occ.max() > VACANCY:
            raise ValueError("occupancy codes must be 0 (Br), 1 (Cl) or 2 (vacancy)")
        return cls._from_own_occupancy(lattice, occ.copy(), rng_state)

    @classmethod
    def _from_own_occupancy(cls, lattice: AnionLattice, occ: np.ndarray, rng_state) -> "BulkState":
        """:meth:`from_occupancy` taking ownership of a checked ``occ`` (no copy).  Set-up memory:
        the state itself plus one byte per site (the vacancy mask) and O(n_vac)."""
        sites = np.flatnonzero(occ == VACANCY).astype(np.int64)
        disp = np.zeros((lattice.n_sites, 3), dtype=np.int32)
        disp[sites, 0] = np.arange(sites.size, dtype=np.int32)
        cells = lattice.cells_of(sites)
        if rng_state is None or not isinstance(rng_state, np.ndarray):
            rng_state = rng_state_from_seed(rng_state)
        rng_state = np.asarray(rng_state)
        if rng_state.shape != (4,) or rng_state.dtype != np.uint64 or not rng_state.any():
            raise ValueError("rng_state must be a non-zero uint64[4] array")
        return cls(lattice=lattice, occupancy=occ, displacement=disp,
                   vacancy_cell=np.ascontiguousarray(cells, dtype=np.int64), vacancy_site=sites,
                   vacancy_displacement=np.zeros((sites.size, 3), dtype=np.int64),
                   collective_displacement=np.zeros((2, 3), dtype=np.int64),
                   hops=np.zeros(2, dtype=np.int64), clock=np.zeros(1, dtype=np.float64),
                   rng_state=rng_state.copy())

    # bookkeeping -------------------------------------------------------------------------------
    @property
    def n_vacancies(self) -> int:
        return int(self.vacancy_site.size)

    @property
    def time_s(self) -> float:
        return float(self.clock[0])

    def n_atoms(self, species: int) -> int:
        return int(np.count_nonzero(self.occupancy == species))

    @property
    def nbytes(self) -> int:
        """Memory of the state arrays (bytes)."""
        return int(sum(getattr(self, name).nbytes for name in _ARRAYS))

    def reset_observables(self) -> None:
        """Zero the displacements, hop counters and clock (after a warm-up); keeps the
        configuration and the random stream."""
        vac = self.occupancy == VACANCY
        self.displacement[~vac] = 0
        self.vacancy_displacement[:] = 0
        self.collective_displacement[:] = 0
        self.hops[:] = 0
        self.clock[0] = 0.0

    def check(self) -> None:
        """Raise AssertionError unless the redundant parts of the state agree (for tests)."""
        occ = self.occupancy
        sites = self.vacancy_site
        assert np.count_nonzero(occ == VACANCY) == sites.size
        assert np.all(occ[sites] == VACANCY)
        assert np.array_equal(self.displacement[sites, 0], np.arange(sites.size))
        assert np.array_equal(self.lattice.cells_of(sites), self.vacancy_cell)

    # checkpoints -------------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        """Plain copies of every array plus ``n_events`` and the lattice shape."""
        out = {name: getattr(self, name).copy() for name in _ARRAYS}
        out["n_events"] = np.int64(self.n_events)
        out["cells"] = np.array([self.lattice.nx, self.lattice.ny, self.lattice.nz], dtype=np.int64)
        out["lattice_constant_A"] = np.float64(self.lattice.lattice_constant_A)
        return out

    @classmethod
    def from_checkpoint(cls, data: dict) -> "BulkState":
        nx, ny, nz = (int(v) for v in data["cells"])
        lattice = AnionLattice(nx, ny, nz, True, float(data["lattice_constant_A"]))
        arrays = {name: np.array(data[name], copy=True) for name in _ARRAYS}
        state = cls(lattice=lattice, n_events=int(data["n_events"]), **arrays)
        if state.occupancy.shape != (lattice.n_sites,) or state.rng_state.dtype != np.uint64:
            raise ValueError("checkpoint does not match its lattice")
        return state

    def copy(self) -> "BulkState":
        return BulkState.from_checkpoint(self.checkpoint())


# ---------------------------------------------------------------------------------------------
# device
# ---------------------------------------------------------------------------------------------
# the checkpoint datasets: the integer state, from which every other array is recomputed.
# Required in every checkpoint:
DEVICE_REQUIRED_CHECKPOINT_KEYS = ("occ", "vac_site", "vac_cell", "head", "tail", "nxt", "prv", "L", "istate",
                                   "fstate", "counters", "rng", "background")
# written since the bias protocols; a checkpoint without them (an older file) starts them at zero:
# exchange (the halides exchanged with each electrode by species, dk.EXCHANGE_NAMES) and
# bias_segment int64[1] (the index of the bias-protocol segment the state is in; 0 for a
# constant field, the only bias of the files that lack it)
DEVICE_OPTIONAL_CHECKPOINT_KEYS = ("exchange", "bias_segment")
# every dataset a checkpoint holds
DEVICE_CHECKPOINT_KEYS = DEVICE_REQUIRED_CHECKPOINT_KEYS + DEVICE_OPTIONAL_CHECKPOINT_KEYS


def _array_bytes(group) -> int:
    return int(sum(v.nbytes for v in group if isinstance(v, np.ndarray)))


@dataclass(eq=False)
class DeviceState:
    """The arrays of one device replica, in the kernels' groups (see module docstring).

    vacancies (:class:`~ionwire.kmc._device_kernels.Vacancies`, slots up to ``capacity``),
    bonds (:class:`~ionwire.kmc._device_kernels.Bonds`), planes
    (:class:`~ionwire.kmc._device_kernels.Planes`), clock
    (:class:`~ionwire.kmc._device_kernels.Clock`), background int64[P] (the initial vacancies of
    each plane: its fixed negative charge).  The derived arrays (rates8, base3, fu, fd, counts,
    bsum, tree) hold whatever the engine last computed: ``from_checkpoint`` leaves them zero.
    """

    lattice: AnionLattice
    vacancies: dk.Vacancies
    bonds: dk.Bonds
    planes: dk.Planes
    clock: dk.Clock
    background: np.ndarray
    #: the index of the bias-protocol segment the state is in (kmc.device.bias_segments)
    bias_segment: int = 0

    # construction ----------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, lattice: AnionLattice, data: dict, *, copy: bool = True) -> "DeviceState":
        """A state holding copies of the integer state ``data`` (the dict of :meth:`checkpoint`,
        or a checkpoint file's datasets) on ``lattice`` (z bounded); TrajectoryError if a key is
        missing or an array does not fit the lattice.  ``copy=False`` takes over ``data["occ"]``
        if it already is a uint8 array (for a freshly built state: no second byte per site)."""
        for key in DEVICE_REQUIRED_CHECKPOINT_KEYS:
            if key not in data:
                raise TrajectoryError(f"checkpoint state lacks {key!r}")
        P = lattice.n_planes
        # never alias the caller's array unless told to
        occ = np.array(data["occ"], dtype=np.uint8, copy=True) if copy else np.asarray(data["occ"], dtype=np.uint8)
        if occ.shape != (lattice.n_sites,):
            raise TrajectoryError(f"checkpoint occupancy has {occ.shape} sites, the config gives {lattice.n_sites}")
        istate = np.array(data["istate"], dtype=np.int64)
        n = int(istate[dk.I_NVAC])
        head = np.array(data["head"], dtype=np.int64)
        tail = np.array(data["tail"], dtype=np.int64)
        L = np.array(data["L"], dtype=np.int64)
        if head.shape != (P,) or L.shape != (P - 1,):
            raise TrajectoryError("checkpoint plane arrays do not match the config's lattice")
        vacancies = _vacancy_slots(occ, head, tail, max(64, 2 * n + 64))
        for name, key in (("site", "vac_site"), ("cell", "vac_cell"), ("nxt", "nxt"), ("prv", "prv")):
            getattr(vacancies, name)[:n] = data[key][:n]
        clock = dk.Clock(istate=istate, fstate=np.array(data["fstate"], dtype=np.float64),
                         counters=np.array(data["counters"], dtype=np.int64),
                         rng=np.array(data["rng"], dtype=np.uint64),
                         exchange=_optional(data, "exchange", (dk.N_EXCHANGE,)))
        bonds = dk.Bonds(L=L, fu=np.zeros(P), fd=np.zeros(P))
        planes = dk.Planes(counts=np.zeros((P, 3), dtype=np.int64), bsum=np.zeros((P, 3)), tree=dk.tree5_new(P))
        return cls(lattice, vacancies, bonds, planes, clock, np.array(data["background"], dtype=np.int64),
                   int(_optional(data, "bias_segment", (1,))[0]))

    def checkpoint(self) -> dict[str, np.ndarray]:
        """Copies of the integer state + time, next-event time, counters and RNG (the datasets
        of a device checkpoint file, keys ``DEVICE_CHECKPOINT_KEYS``)."""
        n = self.n_vacancies
        v, c = self.vacancies, self.clock
        return {"occ": v.occ.copy(), "vac_site": v.site[:n].copy(), "vac_cell": v.cell[:n].copy(),
                "head": v.head.copy(), "tail": v.tail.copy(), "nxt": v.nxt[:n].copy(), "prv": v.prv[:n].copy(),
                "L": self.bonds.L.copy(), "istate": c.istate.copy(), "fstate": c.fstate.copy(),
                "counters": c.counters.copy(), "rng": c.rng.copy(), "background": self.background.copy(),
                "exchange": c.exchange.copy(), "bias_segment": np.array([self.bias_segment], dtype=np.int64)}

    def grow(self, capacity: int) -> None:
        """Reallocate the vacancy slots with room for ``capacity`` (>= the vacancies in use);
        the slots in use keep their contents."""
        n = self.n_vacancies
        if capacity < n:
            raise ValueError(f"capacity {capacity} is below the {n} vacancies in use")
        old = self.vacancies
        new = _vacancy_slots(old.occ, old.head, old.tail, int(capacity))
        for name in ("site", "cell", "rates8", "base3", "nxt", "prv"):
            getattr(new, name)[:n] = getattr(old, name)[:n]
        self.vacancies = new

    # bookkeeping -------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return int(self.vacancies.site.shape[0])

    @property
    def n_vacancies(self) -> int:
        return int(self.clock.istate[dk.I_NVAC])

    @property
    def time_s(self) -> float:
        return float(self.clock.fstate[dk.F_TIME])

    @property
    def events(self) -> int:
        return int(self.clock.counters[dk.C_EVENTS])

    @property
    def nbytes(self) -> int:
        """Memory of all state arrays, derived ones included (bytes)."""
        return (_array_bytes(self.vacancies) + _array_bytes(self.bonds) + _array_bytes(self.planes)
                + _array_bytes(self.clock) + int(self.background.nbytes))


def _optional(data: dict, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """int64 copy of the optional checkpoint array ``key`` (zeros if the checkpoint predates it);
    TrajectoryError if its shape is not ``shape``."""
    if key not in data:
        return np.zeros(shape, dtype=np.int64)
    arr = np.array(data[key], dtype=np.int64)
    if arr.shape != shape:
        raise TrajectoryError(f"checkpoint array {key!r} has shape {arr.shape}, expected {shape}")
    return arr


def _vacancy_slots(occ: np.ndarray, head: np.ndarray, tail: np.ndarray, capacity: int) -> dk.Vacancies:
    """Vacancies with ``capacity`` empty slots (site and links -1, the rest zero)."""
    return dk.Vacancies(occ=occ, site=np.full(capacity, -1, dtype=np.int64),
                        cell=np.zeros((capacity, 4), dtype=np.int64), rates8=np.zeros((capacity, 8)),
                        base3=np.zeros((capacity, 3)), head=head, tail=tail,
                        nxt=np.full(capacity, -1, dtype=np.int64), prv=np.full(capacity, -1, dtype=np.int64))
