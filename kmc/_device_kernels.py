"""numba kernels of the device kMC: bounded wire, exact 1D electrostatics, electrode reactions.

Pure functions over arrays and scalars (no I/O, no globals but constant tables), taken in the
named groups listed under "Arguments" below; the Python layer allocates and checks the arrays
(:class:`ionwire.kmc.state.DeviceState`, :class:`ionwire.kmc.device.DeviceSimulation`).  Shared
primitives (sum tree, hop rates, local10 geometry, xoshiro256++) come from :mod:`ionwire.kmc._kernels`.

Event structure ("tree of trees", all selection O(log P + vacancies per plane))
-------------------------------------------------------------------------------
Rates of a vacancy hop = base rate (barrier only: ``hop_rates8`` with a field-free table) x field
factor exp(-(phi_to - phi_from)/2V_T).  Hops change z by -1, 0, +1 planes; the field factor of an
up (+z) hop from plane p is the factor of bond p, of a down hop that of bond p-1.  With the
exact bond representation of :mod:`ionwire.kmc.electrostatics` (D_k = g - c L_k between the imposed
planes, D_k = -c L_k outside), the factor of bond k is

    up:   M_up   * exp(+gamma L_k / 2),  M_up   = exp(-g/2) (1 outside [a, b])
    down: M_down * exp(-gamma L_k / 2),  M_down = exp(+g/2)

stored per PLANE: fu[p] = exp(+gamma L_p / 2) (its up bond p; 0 for the last plane) and
fd[p] = exp(-gamma L_{p-1} / 2) (its down bond p-1; 0 for plane 0)

where g = (psi_b - psi_a + gamma Lambda) / (b - a) changes with EVERY hop (a uniform field
change), but only through the two scalars M_up, M_down.  Hence ONE sum tree over planes with
five components per node (``tree5[node, c]``, leaves = planes):

- c = 0 (plain): in-plane hops + hops across bonds outside [a, b] of the vacancies on plane p;
- c = 1 (up):   Bup[p] fu[p] for bond p inside [a, b]  (multiplied by M_up at the top);
- c = 2 (down): Bdown[p] fd[p] for bond p-1 inside [a, b]  (times M_down);
- c = 3: vacancy creation on contact plane p, r_c(x_Cl(p)) * (halides on p);
- c = 4: annihilation, r_d(x_Cl(p)) * (vacancies on p).

Bdown/Bin/Bup[p] are the base-rate sums of the vacancies on plane p.  Vacancies are stored grouped
by plane in doubly linked lists (``head``/``tail`` per plane, ``nxt``/``prv`` per slot); moving,
adding or removing a vacancy is O(1) and never reorders another plane's list.  Selection: top
level by the five totals, then a plane by ``tree5_select``, then a vacancy in the plane's list and
a direction by linear scans.

Every float in these structures is a pure function of the integer state (occupancy, vacancy
order, plane blocks, L, Lambda): internal tree nodes are sums of children, leaves and block sums
are recomputed in a fixed order, never updated by differences.  A run restarted from a checkpoint
of that integer state (plus time, next-event time and the RNG state) is therefore bit-identical.

Time: the state holds the absolute time of the next event (drawn right after the previous event
with the then-current total rate); the loop stops before any event later than ``t_stop`` without
touching the RNG, so chunking a run into kernel calls never changes its trajectory.

Arguments
---------
The kernels take their arrays and scalars in named groups (``typing.NamedTuple``, which numba
passes as flat structs: no indirection in the event loop, and no reference counting where it is
compiled without NRT), so no two arrays of one dtype can be exchanged by position:

- :class:`Vacancies`: occupancy, vacancy slots (site, cell, rates, base sums) and plane lists;
- :class:`Bonds`: the bond state L and the bond field factors fu, fd;
- :class:`Planes`: per-plane species counts, base-rate sums and the 5-component sum tree;
- :class:`Clock`: istate (vacancy count, Lambda), fstate (time, next-event time), event
  counters and the xoshiro256++ state;
- :class:`Geometry`: lattice shape, imposed planes a < b, local10 offsets, contact flags;
- :class:`Field`: gamma, the reduced imposed drop and the exp tables of the bond factors;
- :class:`Rates`: the hop rate table and the electrode rate tables.

The first four are the state (:class:`ionwire.kmc.state.DeviceState` owns them), the last three
constants of a run (built by :class:`ionwire.kmc.device.DeviceSimulation`).
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from ._kernels import (HOP_DZ, N_LOCAL, SRC_ONLY, hop_rates8, local_coords, local_sites, local_sites_fast, plane_of,
                       prefetch_row, rng_uniform)

# The shared kmc._kernels sum tree adds differences to ancestors (round-off depends on the
# history); bit-identical restarts need trees that are pure functions of their leaves, so the
# device uses its own small multi-component tree below (internal node = sum of children).
N_COMPONENTS = 5

VACANCY = 2

# status codes of run_device_events
STATUS_EVENTS = 0    # n_events done
STATUS_TIME = 1      # reached t_stop (the next event is later)
STATUS_NO_EVENT = 2  # total rate zero: nothing can happen any more
STATUS_FULL = 3      # vacancy arrays full: grow them and call again

# istate (int64[4]) and fstate (float64[2]) slots
I_NVAC = 0
I_LAMBDA = 1
F_TIME = 0
F_TNEXT = 1

# counters (int64[N_COUNTERS])
COUNTER_NAMES = ("events", "hops_Br", "hops_Cl", "dz_Br_half_units", "dz_Cl_half_units",
                 "created_left", "created_right", "annihilated_left", "annihilated_right",
                 "created_from_Br", "created_from_Cl", "refilled_Br", "refilled_Cl")
N_COUNTERS = len(COUNTER_NAMES)
C_EVENTS, C_HOPS, C_DZ, C_CREATED, C_ANNIHILATED, C_CREATED_FROM, C_REFILLED = 0, 1, 3, 5, 7, 9, 11
# the halide exchange with each electrode by species (clock.exchange int64[N_EXCHANGE]): a halide
# of species X leaving the wire into the electrode of side s (a creation) and one entering the
# wire from it (a refill), index 4 kind + 2 side + X (kind 0 creation, 1 refill; side 0 left,
# 1 right; X 0 Br, 1 Cl)
EXCHANGE_NAMES = ("created_left_from_Br", "created_left_from_Cl", "created_right_from_Br", "created_right_from_Cl",
                  "refilled_left_Br", "refilled_left_Cl", "refilled_right_Br", "refilled_right_Cl")
N_EXCHANGE = len(EXCHANGE_NAMES)

# a shift of the bond gauge keeps exp(gamma L / 2) far from overflow
GAUGE_LIMIT = 200.0


class Vacancies(NamedTuple):
    """Occupancy and vacancy slots.  occ uint8[n_sites] (0 Br, 1 Cl, 2 vacancy); per slot (the
    first istate[I_NVAC] are in use): site int64[cap], cell int64[cap, 4] (i, j, k, s), rates8
    float64[cap, 8] (field-free hop rates), base3 float64[cap, 3] (their down / in / up sums),
    nxt, prv int64[cap] (plane list links, -1 at the ends); per plane: head, tail int64[P]."""

    occ: np.ndarray
    site: np.ndarray
    cell: np.ndarray
    rates8: np.ndarray
    base3: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    nxt: np.ndarray
    prv: np.ndarray


class Bonds(NamedTuple):
    """Electrostatic state: L int64[P-1] (the bond integers of kmc.electrostatics); per plane
    fu float64[P] (factor of its up bond, 0 on the last plane) and fd float64[P] (of its down
    bond, 0 on plane 0)."""

    L: np.ndarray
    fu: np.ndarray
    fd: np.ndarray


class Planes(NamedTuple):
    """Per-plane event structures: counts int64[P, 3] (Br, Cl, vacancies), bsum float64[P, 3]
    (base-rate sums down / in / up of the plane's vacancies), tree float64[2 cap, 5]."""

    counts: np.ndarray
    bsum: np.ndarray
    tree: np.ndarray


class Clock(NamedTuple):
    """istate int64[4] (I_NVAC, I_LAMBDA), fstate float64[2] (F_TIME, F_TNEXT), counters
    int64[N_COUNTERS], rng uint64[4] (xoshiro256++), exchange int64[N_EXCHANGE] (the halides
    exchanged with each electrode by species, EXCHANGE_NAMES)."""

    istate: np.ndarray
    fstate: np.ndarray
    counters: np.ndarray
    rng: np.ndarray
    exchange: np.ndarray


class Geometry(NamedTuple):
    """Lattice nx x ny x nz (z bounded), imposed planes a < b, deltas (``local_deltas``) and
    contact int64[P] (0 none, 1 left contact, 2 right contact)."""

    nx: int
    ny: int
    nz: int
    a: int
    b: int
    deltas: np.ndarray
    contact: np.ndarray


class Field(NamedTuple):
    """gamma (reduced potential step of one charge), psi_drop ((phi_b - phi_a) / V_T), expt
    float64[2J+1] = exp(gamma j / 2), expt_lam = exp(gamma j / 2N) (N = b - a), c_up =
    exp(-psi_drop / 2N), c_down = 1 / c_up."""

    gamma: float
    psi_drop: float
    expt: np.ndarray
    expt_lam: np.ndarray
    c_up: float
    c_down: float


class Rates(NamedTuple):
    """hop float64[3, 5, 3] (field-free ``rate_table``); create, refill float64[2, G+1]: r_c and
    r_d (1/s) of the left / right contact on the grid x_Cl = i / G."""

    hop: np.ndarray
    create: np.ndarray
    refill: np.ndarray


class Scratch(NamedTuple):
    """Work arrays of the event loop: local, local2, scan int64[N_LOCAL], out8 float64[8], dirty
    int64[2] (the plane range whose entries changed)."""

    local: np.ndarray
    local2: np.ndarray
    out8: np.ndarray
    scan: np.ndarray
    dirty: np.ndarray


@numba.njit(cache=True, _nrt=False, forceinline=True)
def vacancy_rates(vac, v, table, geo, local, out8):
    """Base (field-free) rates of vacancy slot v into vac.rates8[v] and their (down, in, up)
    sums; leaves v's local10 in ``local`` and returns the bit mask of its local sites holding
    vacancies."""
    cell = vac.cell
    rates8 = vac.rates8
    base3 = vac.base3
    s = cell[v, 3]
    local_sites_fast(cell[v, 0], cell[v, 1], cell[v, 2], s, geo.nx, geo.ny, geo.nz, False, geo.deltas, local)
    mask = hop_rates8(vac.occ, local, s, table, out8)
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    for d in range(8):
        r = out8[d]
        rates8[v, d] = r
        dz = HOP_DZ[s, d]
        if dz < 0:
            b0 += r
        elif dz == 0:
            b1 += r
        else:
            b2 += r
    base3[v, 0] = b0
    base3[v, 1] = b1
    base3[v, 2] = b2
    return mask


@numba.njit(cache=True, _nrt=False, forceinline=True)
def plane_sums(p, vac, bsum):
    """bsum[p] = the (down, in, up) base-rate sums of the vacancies on plane p, in list order."""
    nxt = vac.nxt
    base3 = vac.base3
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    v = vac.head[p]
    while v >= 0:
        b0 += base3[v, 0]
        b1 += base3[v, 1]
        b2 += base3[v, 2]
        v = nxt[v]
    bsum[p, 0] = b0
    bsum[p, 1] = b1
    bsum[p, 2] = b2


@numba.njit(cache=True, _nrt=False, forceinline=True)
def plane_sums2(p, q, vac, bsum):
    """:func:`plane_sums` of two planes, their lists walked side by side (two independent chains
    of dependent loads overlap); each plane's additions keep their list order."""
    nxt = vac.nxt
    base3 = vac.base3
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    v = vac.head[p]
    w = vac.head[q]
    while v >= 0 and w >= 0:
        a0 += base3[v, 0]
        a1 += base3[v, 1]
        a2 += base3[v, 2]
        c0 += base3[w, 0]
        c1 += base3[w, 1]
        c2 += base3[w, 2]
        v = nxt[v]
        w = nxt[w]
    while v >= 0:
        a0 += base3[v, 0]
        a1 += base3[v, 1]
        a2 += base3[v, 2]
        v = nxt[v]
    while w >= 0:
        c0 += base3[w, 0]
        c1 += base3[w, 1]
        c2 += base3[w, 2]
        w = nxt[w]
    bsum[p, 0] = a0
    bsum[p, 1] = a1
    bsum[p, 2] = a2
    bsum[q, 0] = c0
    bsum[q, 1] = c1
    bsum[q, 2] = c2


def tree5_new(n_leaves: int) -> np.ndarray:
    """Zero 5-component sum tree float64[2 cap, 5] (cap a power of two >= n_leaves, >= 8)."""
    cap = 8
    while cap < n_leaves:
        cap *= 2
    return np.zeros((2 * cap, N_COMPONENTS))


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree5_set_leaf(tree, leaf, v0, v1, v2, v3, v4):
    """Set the 5 components of one leaf WITHOUT updating its ancestors (see tree5_propagate)."""
    n = (tree.shape[0] >> 1) + leaf
    tree[n, 0] = v0
    tree[n, 1] = v1
    tree[n, 2] = v2
    tree[n, 3] = v3
    tree[n, 4] = v4


# one explicit signature each (compiled at import, from the cache when warm): called with literal
# component counts and indices, these would otherwise be compiled once per literal value, while
# LLVM folds the constants once they are inlined anyway
@numba.njit("void(float64[:, ::1], int64, int64, int64)", cache=True, _nrt=False, forceinline=True)
def tree5_propagate(tree, lo, hi, n_comp):
    """Recompute components 0 .. n_comp-1 of the ancestors of the leaves lo..hi (a contiguous
    range) as sums of their children, level by level: O(hi - lo + log cap) for the whole range.
    (n_comp = 3 when no leaf in the range is a contact plane: the reaction components of the
    leaves did not change, so neither do their ancestors'.)"""
    cap = tree.shape[0] >> 1
    lo += cap
    hi += cap
    while lo > 1:
        lo >>= 1
        hi >>= 1
        for n in range(lo, hi + 1):
            lft = 2 * n
            tree[n, 0] = tree[lft, 0] + tree[lft + 1, 0]
            tree[n, 1] = tree[lft, 1] + tree[lft + 1, 1]
            tree[n, 2] = tree[lft, 2] + tree[lft + 1, 2]
            if n_comp > 3:
                tree[n, 3] = tree[lft, 3] + tree[lft + 1, 3]
                tree[n, 4] = tree[lft, 4] + tree[lft + 1, 4]


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree5_propagate_near(tree, lo, hi):
    """:func:`tree5_propagate` (all 5 components) for hi - lo <= 1, the case of a hop: the new
    sums travel up in registers (only the siblings are loaded), so the levels do not wait for a
    store to be read back.  Each node is still the sum of its two children (addition is
    commutative), so the tree is bit-identical to the generic routine's."""
    cap = tree.shape[0] >> 1
    n = cap + lo
    m = cap + hi
    a0 = tree[n, 0]
    a1 = tree[n, 1]
    a2 = tree[n, 2]
    a3 = tree[n, 3]
    a4 = tree[n, 4]
    b0 = tree[m, 0]
    b1 = tree[m, 1]
    b2 = tree[m, 2]
    b3 = tree[m, 3]
    b4 = tree[m, 4]
    # two adjacent paths (m = n + 1) until they meet
    while n > 1 and m != n:
        if (n & 1) == 0:
            # siblings: their parent is the meeting point
            a0 += b0
            a1 += b1
            a2 += b2
            a3 += b3
            a4 += b4
            n >>= 1
            m = n
        else:
            a0 = tree[n - 1, 0] + a0
            a1 = tree[n - 1, 1] + a1
            a2 = tree[n - 1, 2] + a2
            a3 = tree[n - 1, 3] + a3
            a4 = tree[n - 1, 4] + a4
            b0 += tree[m + 1, 0]
            b1 += tree[m + 1, 1]
            b2 += tree[m + 1, 2]
            b3 += tree[m + 1, 3]
            b4 += tree[m + 1, 4]
            n >>= 1
            m >>= 1
            tree[m, 0] = b0
            tree[m, 1] = b1
            tree[m, 2] = b2
            tree[m, 3] = b3
            tree[m, 4] = b4
        tree[n, 0] = a0
        tree[n, 1] = a1
        tree[n, 2] = a2
        tree[n, 3] = a3
        tree[n, 4] = a4
    # one path to the root
    while n > 1:
        sib = n ^ 1
        a0 += tree[sib, 0]
        a1 += tree[sib, 1]
        a2 += tree[sib, 2]
        a3 += tree[sib, 3]
        a4 += tree[sib, 4]
        n >>= 1
        tree[n, 0] = a0
        tree[n, 1] = a1
        tree[n, 2] = a2
        tree[n, 3] = a3
        tree[n, 4] = a4


@numba.njit("int64(float64[:, ::1], int64, float64)", cache=True, _nrt=False, forceinline=True)
def tree5_select(tree, c, u):
    """Leaf whose cumulative interval of component c contains u * total (u in [0, 1))."""
    cap = tree.shape[0] >> 1
    x = u * tree[1, c]
    n = 1
    while n < cap:
        lft = 2 * n
        tl = tree[lft, c]
        if x < tl:
            n = lft
        elif tree[lft + 1, c] > 0.0:
            x -= tl
            n = lft + 1
        else:
            n = lft
    return n - cap


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _interp_tab(tab, side, x):
    """Linear interpolation of row ``side`` of a rate table on the grid x = i / (len - 1)
    (indexing the 2D table directly: no array view in the hot path)."""
    g = tab.shape[1] - 1
    y = x * g
    i = int(y)
    if i >= g:
        return tab[side, g]
    if i < 0:
        return tab[side, 0]
    f = y - i
    return tab[side, i] + f * (tab[side, i + 1] - tab[side, i])



@numba.njit(cache=True, _nrt=False, forceinline=True)
def plane_entries(p, planes, bonds, geo, rates):
    """Recompute the 5 tree components of leaf (plane) p (see the module docstring); the caller
    propagates them to the ancestors with tree5_propagate."""
    a = geo.a
    b = geo.b
    bsum = planes.bsum
    counts = planes.counts
    # branch-free: iu / idn = 1 if the up / down bond lies between the imposed planes
    iu = 1.0 if (a <= p) & (p < b) else 0.0
    idn = 1.0 if (a < p) & (p <= b) else 0.0
    xu = bsum[p, 2] * bonds.fu[p]
    xd = bsum[p, 0] * bonds.fd[p]
    plain = bsum[p, 1] + xu * (1.0 - iu) + xd * (1.0 - idn)
    eu = xu * iu
    ed = xd * idn
    ec = 0.0
    ea = 0.0
    side = geo.contact[p] - 1
    if side >= 0:
        nh = counts[p, 0] + counts[p, 1]
        x = counts[p, 1] / nh if nh > 0 else 0.0
        ec = _interp_tab(rates.create, side, x) * nh
        ea = _interp_tab(rates.refill, side, x) * counts[p, 2]
    tree5_set_leaf(planes.tree, p, plain, eu, ed, ec, ea)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _exp_half(j, gamma, expt):
    """exp(gamma j / 2) from the table expt[J + j] (J = len // 2) when |j| <= J."""
    J = expt.shape[0] >> 1
    if -J <= j <= J:
        return expt[J + j]
    return np.exp(0.5 * gamma * j)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _bond_factor(k, bonds, field):
    """Field factors of bond k: the up factor of plane k and the down factor of plane k+1."""
    L = bonds.L
    bonds.fu[k] = _exp_half(L[k], field.gamma, field.expt)
    bonds.fd[k + 1] = _exp_half(-L[k], field.gamma, field.expt)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def multipliers(lam, field, geo):
    """(M_up, M_down) = exp(-+ g/2), g = (psi_drop + gamma Lambda)/(b - a), of the bonds between
    the imposed planes; field.expt_lam holds exp(gamma j / 2N), c_up = exp(-psi_drop / 2N),
    c_down = 1 / c_up (a pure function of Lambda)."""
    n = geo.b - geo.a
    expt = field.expt_lam
    J = expt.shape[0] >> 1
    if -J <= lam <= J:
        return field.c_up * expt[J - lam], field.c_down * expt[J + lam]
    g = (field.psi_drop + field.gamma * lam) / n
    return np.exp(-0.5 * g), np.exp(0.5 * g)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def total_rate(tree5, m_up, m_down):
    """Total event rate (1/s), summed in the same order as the event loop does."""
    return tree5[1, 0] + m_up * tree5[1, 1] + m_down * tree5[1, 2] + (tree5[1, 3] + tree5[1, 4])


@numba.njit(cache=True)
def build_device(vac, planes, bonds, clock, geo, field, rates):
    """Recompute every derived array (rates, plane sums and counts, bond factors, trees) from the
    integer state: occ, the vacancy slots 0 .. n_vac-1 (site, cell), the plane lists, L."""
    n_planes = vac.head.shape[0]
    n_vac = clock.istate[I_NVAC]
    occ = vac.occ
    counts = planes.counts
    tree5 = planes.tree
    local = np.empty(N_LOCAL, dtype=np.int64)
    out8 = np.empty(8, dtype=np.float64)
    for v in range(n_vac):
        vacancy_rates(vac, v, rates.hop, geo, local, out8)
    counts[:, :] = 0
    per_k = 3 * geo.nx * geo.ny
    for site in range(occ.shape[0]):
        k = site // per_k
        p = 2 * k + (1 if site % 3 == 2 else 0)
        counts[p, occ[site]] += 1
    for k in range(n_planes - 1):
        _bond_factor(k, bonds, field)
    tree5[:, :] = 0.0
    for p in range(n_planes):
        plane_sums(p, vac, planes.bsum)
        plane_entries(p, planes, bonds, geo, rates)
    tree5_propagate(tree5, 0, n_planes - 1, N_COMPONENTS)


@numba.njit(cache=True)
def refresh_entries(planes, bonds, geo, rates):
    """Recompute every leaf of the sum tree from the plane sums, counts, bond factors and the
    (new) electrode rate tables, and every internal node as the sum of its children: the tree
    :func:`build_device` makes from the same state (used when the bias changes; the base-rate
    sums do not depend on the field)."""
    n_planes = planes.counts.shape[0]
    for p in range(n_planes):
        plane_entries(p, planes, bonds, geo, rates)
    tree5_propagate(planes.tree, 0, n_planes - 1, N_COMPONENTS)


@numba.njit(cache=True)
def draw_next_time(planes, clock, geo, field):
    """Draw the absolute time of the next event from the current total rate (inf if none)."""
    m_up, m_down = multipliers(clock.istate[I_LAMBDA], field, geo)
    total = total_rate(planes.tree, m_up, m_down)
    fstate = clock.fstate
    if total > 0.0:
        fstate[F_TNEXT] = fstate[F_TIME] - np.log(1.0 - rng_uniform(clock.rng)) / total
    else:
        fstate[F_TNEXT] = np.inf


# ---------------------------------------------------------------------------------------------
# per-plane vacancy lists (doubly linked: moving, adding or removing a vacancy never reorders the
# other planes' lists, so their base-rate sums stay bit-identical to a fresh summation)
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True, _nrt=False, forceinline=True)
def list_append(v, p, vac):
    head = vac.head
    tail = vac.tail
    nxt = vac.nxt
    prv = vac.prv
    t = tail[p]
    prv[v] = t
    nxt[v] = -1
    if t >= 0:
        nxt[t] = v
    else:
        head[p] = v
    tail[p] = v


@numba.njit(cache=True, _nrt=False, forceinline=True)
def list_remove(v, p, vac):
    nxt = vac.nxt
    prv = vac.prv
    a = prv[v]
    b = nxt[v]
    if a >= 0:
        nxt[a] = b
    else:
        vac.head[p] = b
    if b >= 0:
        prv[b] = a
    else:
        vac.tail[p] = a


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _slot_of_site(site, p, vac):
    vac_site = vac.site
    nxt = vac.nxt
    q = vac.head[p]
    while q >= 0:
        if vac_site[q] == site:
            return q
        q = nxt[q]
    return -1


# ---------------------------------------------------------------------------------------------
# charge bookkeeping (see kmc.electrostatics)
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True, _nrt=False, forceinline=True)
def add_charge(p, delta, L, istate, a, b):
    """Plane p gains ``delta`` elementary charges: update L (and Lambda); returns the changed bond
    range (klo, khi), empty if klo > khi."""
    if p == a or p == b:
        return 1, 0
    if p < a:
        for k in range(p, a):
            L[k] += delta
        return p, a - 1
    if p > b:
        for k in range(b, p):
            L[k] -= delta
        return b, p - 1
    if b - p <= p - a:
        for k in range(p, b):
            L[k] += delta
        istate[I_LAMBDA] += delta * (b - p)
        return p, b - 1
    for k in range(a, p):
        L[k] -= delta
    istate[I_LAMBDA] -= delta * (p - a)
    return a, p - 1


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _regauge(L, istate, a, b, gamma):
    """Shift the gauge constant of L between a and b if exp(gamma L / 2) would grow too large;
    returns True if it did (a pure function of L: restarts see the same shifts)."""
    big = False
    for k in range(a, b):
        if abs(0.5 * gamma * L[k]) > GAUGE_LIMIT:
            big = True
            break
    if not big:
        return False
    tot = 0
    for k in range(a, b):
        tot += L[k]
    m = tot // (b - a)
    for k in range(a, b):
        L[k] -= m
    istate[I_LAMBDA] -= m * (b - a)
    return True


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _refresh_planes(plo, phi, vac, planes, bonds, geo, rates, sums):
    """Recompute the tree entries of planes plo..phi (clipped to the wire), with their base-rate
    sums first if ``sums``, and propagate them to the root."""
    bsum = planes.bsum
    n_planes = bsum.shape[0]
    if plo < 0:
        plo = 0
    if phi > n_planes - 1:
        phi = n_planes - 1
    n_comp = 3
    pair = sums and phi == plo + 1
    if pair:
        plane_sums2(plo, phi, vac, bsum)
    for p in range(plo, phi + 1):
        if sums and not pair:
            plane_sums(p, vac, bsum)
        plane_entries(p, planes, bonds, geo, rates)
        if geo.contact[p] != 0:
            n_comp = N_COMPONENTS
    if phi - plo <= 1:
        tree5_propagate_near(planes.tree, plo, phi)
    else:
        tree5_propagate(planes.tree, plo, phi, n_comp)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _update_neighbours(skip, vac, table, geo, scan, local, out8, dirty):
    """Recompute the rates of the vacancies among the local10 sites in ``scan`` (except site
    ``skip``); widens the dirty plane range dirty[0..1]."""
    occ = vac.occ
    for l in range(N_LOCAL):
        q = scan[l]
        if q < 0 or q == skip or occ[q] != VACANCY:
            continue
        _refresh_site(q, vac, table, geo, local, out8, dirty)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _refresh_site(q, vac, table, geo, local, out8, dirty):
    """Recompute the rates of the vacancy on site q and widen the dirty plane range."""
    per_k = 3 * geo.nx * geo.ny
    k = q // per_k
    pq = 2 * k + (1 if q % 3 == 2 else 0)
    w = _slot_of_site(q, pq, vac)
    vacancy_rates(vac, w, table, geo, local, out8)
    if pq < dirty[0]:
        dirty[0] = pq
    if pq > dirty[1]:
        dirty[1] = pq


# ---------------------------------------------------------------------------------------------
# the event loop
# ---------------------------------------------------------------------------------------------
def run_device_events(vac, planes, bonds, clock, geo, field, rates, n_events, t_stop):
    """Advance the device by at most ``n_events`` events, stopping before any event after
    ``t_stop`` (s; then clock.fstate[F_TIME] = t_stop).  The state groups (vac, planes, bonds,
    clock) are updated in place.  Returns (status, events done).

    A Python function: it allocates the scratch arrays and calls the compiled loop
    ``_device_core``, which runs without numba's reference counting (with it, every helper taking
    arrays would cost atomic increments/decrements, dozens per event).  Not compiled itself, so
    that the loop is optimised once and not again inside a wrapper (a cold first run compiles
    less)."""
    scratch = Scratch(np.empty(N_LOCAL, dtype=np.int64), np.empty(N_LOCAL, dtype=np.int64),
                      np.empty(8, dtype=np.float64), np.empty(N_LOCAL, dtype=np.int64),
                      np.empty(2, dtype=np.int64))
    return _device_core(vac, planes, bonds, clock, geo, field, rates, n_events, t_stop, scratch)


@numba.njit(cache=True, _nrt=False)
def _device_core(vac, planes, bonds, clock, geo, field, rates, n_events, t_stop, scratch):
    """The event loop of :func:`run_device_events` (scratch arrays passed in, no NRT)."""
    occ = vac.occ
    vac_site = vac.site
    vac_cell = vac.cell
    rates8 = vac.rates8
    base3 = vac.base3
    head = vac.head
    tail = vac.tail
    nxt = vac.nxt
    prv = vac.prv
    counts = planes.counts
    bsum = planes.bsum
    tree5 = planes.tree
    L = bonds.L
    fu = bonds.fu
    fd = bonds.fd
    istate = clock.istate
    fstate = clock.fstate
    counters = clock.counters
    exchange = clock.exchange
    rng = clock.rng
    nx = geo.nx
    ny = geo.ny
    nz = geo.nz
    a = geo.a
    b = geo.b
    deltas = geo.deltas
    contact = geo.contact
    gamma = field.gamma
    table = rates.hop
    local = scratch.local
    local2 = scratch.local2
    out8 = scratch.out8
    scan = scratch.scan
    plo_phi = scratch.dirty
    cap = vac_site.shape[0]
    n_sites = occ.shape[0]
    row = 3 * nx
    plane_stride = 3 * nx * ny
    # the class totals of the current state (pure functions of it; carried from event to event)
    m_up, m_down = multipliers(istate[I_LAMBDA], field, geo)
    t_plain = tree5[1, 0]
    t_up = m_up * tree5[1, 1]
    t_down = m_down * tree5[1, 2]
    t_create = tree5[1, 3]
    t_react = t_create + tree5[1, 4]
    for ev in range(n_events):
        if fstate[F_TNEXT] > t_stop:
            if t_stop > fstate[F_TIME]:
                fstate[F_TIME] = t_stop
            if fstate[F_TNEXT] == np.inf:
                return STATUS_NO_EVENT, ev
            return STATUS_TIME, ev
        if istate[I_NVAC] >= cap - 1:
            return STATUS_FULL, ev
        total = t_plain + t_up + t_down + t_react
        fstate[F_TIME] = fstate[F_TNEXT]
        x = rng_uniform(rng) * total
        counters[C_EVENTS] += 1
        if x < t_plain + t_up + t_down or t_react <= 0.0:
            # ---------------- a hop: choose the class, the plane, the vacancy, the direction
            if x < t_plain or (t_up <= 0.0 and t_down <= 0.0):
                cls = 0
                u = x / t_plain
                p = tree5_select(tree5, 0, u if u < 1.0 else 0.9999999999999999)
            elif x < t_plain + t_up or t_down <= 0.0:
                cls = 1
                u = (x - t_plain) / t_up
                p = tree5_select(tree5, 1, u if u < 1.0 else 0.9999999999999999)
            else:
                cls = 2
                u = (x - t_plain - t_up) / t_down
                p = tree5_select(tree5, 2, u if u < 1.0 else 0.9999999999999999)
            # per-class weights of the three z classes (down, in, up) of a vacancy on plane p
            w0 = 0.0
            w1 = 0.0
            w2 = 0.0
            if cls == 0:
                w1 = 1.0
                iu = 1.0 if (a <= p) & (p < b) else 0.0
                idn = 1.0 if (a < p) & (p <= b) else 0.0
                w2 = fu[p] * (1.0 - iu)
                w0 = fd[p] * (1.0 - idn)
            elif cls == 1:
                w2 = 1.0
            else:
                w0 = 1.0
            # the class weight of the plane: with one z class exactly the plane sum (same additions
            # in the same list order); class 0: the plane's leaf, bsum[p, 1] + w2 bsum[p, 2] + w0 bsum[p, 0] as plane_entries
            # forms it; the scans below end on the last vacancy / direction of positive weight, so
            # round-off between this and a direct sum cannot select a zero-rate event)
            if cls == 1:
                W = bsum[p, 2]
            elif cls == 2:
                W = bsum[p, 0]
            else:
                W = tree5[(tree5.shape[0] >> 1) + p, 0]
            target = rng_uniform(rng) * W
            cum = 0.0
            v = -1
            w = head[p]
            while w >= 0:
                ww = w0 * base3[w, 0] + w1 * base3[w, 1] + w2 * base3[w, 2]
                if ww > 0.0:
                    v = w
                    if target < cum + ww:
                        break
                    cum += ww
                w = nxt[w]
            # the occupancy lines around the vacancy (its row, the rows and planes above and
            # below) are needed for the new rates: ask for them before the direction is chosen
            src = vac_site[v]
            prefetch_row(occ, src)
            prefetch_row(occ, min(src + row, n_sites - 1))
            prefetch_row(occ, max(src - row, 0))
            prefetch_row(occ, min(src + plane_stride, n_sites - 1))
            prefetch_row(occ, max(src - plane_stride, 0))
            target -= cum
            cs = vac_cell[v, 3]
            d = -1
            cum = 0.0
            for dd in range(8):
                dz = HOP_DZ[cs, dd]
                wd = rates8[v, dd] * (w0 if dz < 0 else (w1 if dz == 0 else w2))
                if wd > 0.0:
                    d = dd
                    if target < cum + wd:
                        break
                    cum += wd
            # ---------------- execute the hop of vacancy v along d
            ci = vac_cell[v, 0]
            cj = vac_cell[v, 1]
            ck = vac_cell[v, 2]
            local_sites_fast(ci, cj, ck, cs, nx, ny, nz, False, deltas, scan)
            dst = scan[d]
            dz = HOP_DZ[cs, d]
            xs = occ[dst]
            occ[src] = xs
            occ[dst] = VACANCY
            counters[C_HOPS + xs] += 1
            counters[C_DZ + xs] -= dz
            ps = plane_of(ck, cs)
            pd = ps + dz
            # new cell of the vacancy (compare-and-wrap, no division)
            i2, j2, k2, s2, _ = local_coords(ci, cj, ck, cs, d, nx, ny, nz, False)
            vac_site[v] = dst
            vac_cell[v, 0] = i2
            vac_cell[v, 1] = j2
            vac_cell[v, 2] = k2
            vac_cell[v, 3] = s2
            plo_phi[0] = min(ps, pd)
            plo_phi[1] = max(ps, pd)
            if dz != 0:
                counts[ps, xs] += 1
                counts[ps, VACANCY] -= 1
                counts[pd, xs] -= 1
                counts[pd, VACANCY] += 1
                list_remove(v, ps, vac)
                list_append(v, pd, vac)
                kb = ps if dz > 0 else pd
                L[kb] -= dz
                if a <= kb and kb < b:
                    istate[I_LAMBDA] -= dz
                _bond_factor(kb, bonds, field)
            mask = vacancy_rates(vac, v, table, geo, local, out8)
            # other vacancies to refresh: those in dst's local10 (the mask of v's new rates) and
            # those on the 5 sites of src's local10 outside dst's (scan holds src's local10)
            while mask:
                l = 0
                while not (mask >> l) & 1:
                    l += 1
                mask &= mask - 1
                _refresh_site(local[l], vac, table, geo, local2, out8, plo_phi)
            for m in range(5):
                q = scan[SRC_ONLY[cs, d, m]]
                if q >= 0 and occ[q] == VACANCY:
                    _refresh_site(q, vac, table, geo, local2, out8, plo_phi)
            _refresh_planes(plo_phi[0], plo_phi[1], vac, planes, bonds, geo, rates, True)
        else:
            # ---------------- an electrode reaction on a contact plane
            xr = x - t_plain - t_up - t_down
            create = xr < t_create or t_react - t_create <= 0.0
            if create:
                u = xr / t_create
                p = tree5_select(tree5, 3, u if u < 1.0 else 0.9999999999999999)
            else:
                u = (xr - t_create) / (t_react - t_create)
                p = tree5_select(tree5, 4, u if u < 1.0 else 0.9999999999999999)
            side = contact[p] - 1
            k = p >> 1
            odd = p & 1
            if create:
                # creation: a uniformly chosen halide of plane p leaves
                n_in = nx * ny if odd else 2 * nx * ny
                while True:
                    r = int(rng_uniform(rng) * n_in)
                    if r >= n_in:
                        r = n_in - 1
                    if odd:
                        s = 2
                        c = r
                    else:
                        s = r & 1
                        c = r >> 1
                    i = c % nx
                    j = c // nx
                    site = ((k * ny + j) * nx + i) * 3 + s
                    if occ[site] != VACANCY:
                        break
                xs = occ[site]
                occ[site] = VACANCY
                counts[p, xs] -= 1
                counts[p, VACANCY] += 1
                counters[C_CREATED + side] += 1
                counters[C_CREATED_FROM + xs] += 1
                exchange[2 * side + xs] += 1
                v = istate[I_NVAC]
                list_append(v, p, vac)
                istate[I_NVAC] = v + 1
                vac_site[v] = site
                vac_cell[v, 0] = i
                vac_cell[v, 1] = j
                vac_cell[v, 2] = k
                vac_cell[v, 3] = s
                vacancy_rates(vac, v, table, geo, local, out8)
                delta = 1
            else:
                # annihilation: a uniformly chosen vacancy of plane p is refilled with the
                # plane's halide composition
                nvp = counts[p, VACANCY]
                r = int(rng_uniform(rng) * nvp)
                if r >= nvp:
                    r = nvp - 1
                v = head[p]
                for _ in range(r):
                    v = nxt[v]
                site = vac_site[v]
                s = vac_cell[v, 3]
                i = vac_cell[v, 0]
                j = vac_cell[v, 1]
                nh = counts[p, 0] + counts[p, 1]
                ur = rng_uniform(rng)
                xs = 0
                if nh > 0 and ur * nh >= counts[p, 0]:
                    xs = 1
                occ[site] = xs
                counts[p, xs] += 1
                counts[p, VACANCY] -= 1
                counters[C_ANNIHILATED + side] += 1
                counters[C_REFILLED + xs] += 1
                exchange[4 + 2 * side + xs] += 1
                list_remove(v, p, vac)
                last = istate[I_NVAC] - 1
                if v != last:
                    # the last slot takes v's index; its list position is kept
                    vac_site[v] = vac_site[last]
                    for m in range(4):
                        vac_cell[v, m] = vac_cell[last, m]
                    for m in range(8):
                        rates8[v, m] = rates8[last, m]
                    for m in range(3):
                        base3[v, m] = base3[last, m]
                    pl = plane_of(vac_cell[v, 2], vac_cell[v, 3])
                    pa = prv[last]
                    nb = nxt[last]
                    prv[v] = pa
                    nxt[v] = nb
                    if pa >= 0:
                        nxt[pa] = v
                    else:
                        head[pl] = v
                    if nb >= 0:
                        prv[nb] = v
                    else:
                        tail[pl] = v
                prv[last] = -1
                nxt[last] = -1
                istate[I_NVAC] = last
                delta = -1
            plo_phi[0] = p
            plo_phi[1] = p
            local_sites(i, j, k, s, nx, ny, nz, False, scan)
            _update_neighbours(site, vac, table, geo, scan, local, out8, plo_phi)
            _refresh_planes(plo_phi[0], plo_phi[1], vac, planes, bonds, geo, rates, True)
            klo, khi = add_charge(p, delta, L, istate, a, b)
            if _regauge(L, istate, a, b, gamma):
                klo = min(klo, a)
                khi = max(khi, b - 1)
            for kk in range(klo, khi + 1):
                _bond_factor(kk, bonds, field)
            if klo <= khi:
                # only the bond factors changed on these planes: entries, not sums
                _refresh_planes(klo, khi + 1, vac, planes, bonds, geo, rates, False)
        # ---------------- the next event time, from the new total rate
        m_up, m_down = multipliers(istate[I_LAMBDA], field, geo)
        t_plain = tree5[1, 0]
        t_up = m_up * tree5[1, 1]
        t_down = m_down * tree5[1, 2]
        t_create = tree5[1, 3]
        t_react = t_create + tree5[1, 4]
        total = t_plain + t_up + t_down + t_react
        if total > 0.0:
            fstate[F_TNEXT] = fstate[F_TIME] - np.log(1.0 - rng_uniform(rng)) / total
        else:
            fstate[F_TNEXT] = np.inf
    return STATUS_EVENTS, n_events
