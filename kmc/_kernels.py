"""Shared numba primitives of the lattice kMC (bulk and device): sum tree, hop rates, RNG, bulk loop.

Everything here is ``@numba.njit(cache=True)`` over arrays and scalars (no objects, no I/O, no
globals other than the constant geometry tables below).  The device kMC imports the primitives
marked [shared]; their signatures are stable.

Conventions
-----------
- Occupancy codes: 0 = Br, 1 = Cl, 2 = vacancy (uint8).
- Site numbering and half-unit positions as in :mod:`ionwire.structures.lattice`:
  ``site = ((k * ny + j) * nx + i) * 3 + s``; a cell coordinate quadruple is ``(i, j, k, s)``.
- A vacancy occupies event slot ``v``; its 8 possible hops are the sum-tree leaves
  ``8 * v + d`` (d = 0..7 the direction of :data:`structures.lattice.NEIGHBOUR_OFFSETS`).
- ``dz`` of a hop is the z displacement *of the vacancy* (i -> j) in half-units (a/2): -1, 0, +1.

Local environment ("local10") [shared]
--------------------------------------
Every rate of a vacancy on site v depends only on 10 sites: its 8 neighbours (local index
l = d, the hop targets) and the two sites opposite to v in its two PbX6 octahedra (l = 8: cell
-1 along the site's axis, l = 9: cell +1).  The 4 environment sites of hop d are the local
indices ``ENV_LOCAL[s, d, :]`` (one opposite site and three neighbours).  Conversely, the rates of
a vacancy change only if one of its 10 local sites changes occupancy, so after a hop i -> j the
vacancies among the local10 of i and of j are the only ones to update.

- ``local_coords(i, j, k, s, l, nx, ny, nz, periodic_z) -> (i2, j2, k2, s2, valid)``: coordinates
  of local site l (0..9) of a site, with compare-and-wrap instead of integer division.
- ``local_sites(i, j, k, s, nx, ny, nz, periodic_z, out)``: fills ``out`` (int64[>=10]) with the
  10 local site indices, -1 where a bounded z end cuts them (branch-free wrap).
- ``local_deltas(nx, ny) -> int64[3, 10]`` (Python) and ``local_sites_fast(i, j, k, s, nx, ny,
  nz, periodic_z, deltas, out)``: the same with a fixed-offset fast path for interior cells.
- ``SRC_ONLY[s, d, :]``: the 5 local indices of a site that are neither its hop-d target nor in
  the target's local10 (after a hop src -> dst, the vacancies to refresh are those in dst's
  local10 -- returned by ``hop_rates8`` -- and those on these 5 sites around src).
- ``plane_of(k, s) -> p = 2 k + (s == 2)``.

Hop-rate logic [shared]
-----------------------
- ``rate_table(barriers_eV, nu0_per_s, kT_eV, field_half_eV=0.0) -> float64[3, 5, 3]`` (Python):
  ``table[species, n_cl, dz + 1] = nu0 exp(-(E_a(species, n_cl) - dz * field_half_eV) / kT)`` for
  species 0 (Br) and 1 (Cl); row 2 (target is a vacancy) is 0, so the hot loop indexes the table
  by the target's occupancy with no branch and no exp.  ``field_half_eV = e E (a/2) / 2`` in eV
  (E in V/m along z) gives docs/model.md's factor exp(+e E (z_j - z_i) / 2kT) for a vacancy i -> j.
  For a non-uniform potential (device) build one table per anion plane with ``field_half_eV = 0``
  times the per-plane factor exp(-(phi(p+dz) - phi(p)) e / 2kT), or compose rates as you like.
- ``hop_rates8(occ, local, s, table, out) -> vac_mask``: the 8 hop rates (1/s) of a vacancy on
  sublattice s with local10 sites ``local`` into ``out`` (float64[8]); a missing target (-1) or a
  vacant target gives 0; missing environment sites count as not Cl.  Returns the bit mask of
  local sites (bit l) holding a vacancy.  ``table`` is a [3, 5, 3] table (a per-plane
  slice ``tables[p]`` works).

Sum tree [shared] (flat binary tree over groups of 8 leaves, float64)
--------------------------------------------------------------------
One float64 array ``tree`` of length 10 G (G a power of two, ``tree_capacity(n) = 8 G``):
``tree[2G + q]`` is leaf q (q < 8G, leaves of one vacancy = one group = one cache line),
``tree[G + g]`` the exact sum of group g's 8 leaves, nodes 1 .. G-1 a binary tree over the group
sums (children 2n, 2n+1) and ``tree[1]`` the total.  Selection descends log2(G) levels
branch-free, then counts prefix sums in the group's line.  Updates recompute the group sum
exactly and add its change to the log2(G) ancestors (independent adds, no dependency chain);
the round-off this accumulates is removed by ``tree_build`` (the bulk loop calls it at the start
of every kernel call, i.e. every <= 1e6 events) and the selection never returns a zero-rate leaf
(a rare round-off miss triggers an exact rebuild and a careful descent).

- ``tree_capacity(n_leaves) -> int`` (8 G);  ``tree_new(n_leaves) -> float64[10 G]`` (Python, zeros)
- ``tree_build(tree)``: recompute group sums and internal nodes from the leaves (O(G)).
- ``tree_update(tree, leaf, rate)``: set one leaf, O(log G).
- ``tree_update8(tree, first_leaf, rates8)``: set the 8 leaves of one group
  (``first_leaf`` a multiple of 8: one vacancy), O(log G).
- ``tree_select(tree, u) -> leaf``: the leaf whose cumulative interval contains ``u * total``,
  u in [0, 1); never a zero-rate leaf while the total is positive (-1 if every leaf is zero:
  check ``tree_total(tree) > 0`` first).
- ``tree_select_pair(tree, u) -> (group, d)``: the same as (leaf // 8, leaf % 8) ((-1, -1) if
  every leaf is zero);
  ``tree_select_pair_prefetch(tree, u, pf_a, pf_b)`` also prefetches the candidate groups' leaf
  lines and rows of two per-group arrays near the end of the descent.
- The helpers are compiled without numba's reference counting (``_nrt=False``: they allocate
  nothing) and with ``forceinline=True``: each is typed once, as a function of its own, and LLVM
  inlines it into the loops (numba-IR inlining, ``inline="always"``, re-types the helper at every
  call site and made a cold compile of the device loop three times longer).
- ``tree_total(tree) -> float``;  ``tree_leaf(tree, leaf) -> float``.

Random numbers [shared] (xoshiro256++, state = uint64[4])
--------------------------------------------------------
The hot loops draw from a xoshiro256++ generator whose whole state is a uint64[4] array that the
kernel advances in place.  ``rng_state_from_seed(seed) -> uint64[4]`` seeds it from
:class:`numpy.random.SeedSequence` (an int, a SeedSequence, or None).  Same seed -> same stream;
a checkpoint is ``state.copy()`` and restoring it (``state[:] = saved``) continues the stream
exactly.  ``rng_next(state) -> uint64``; ``rng_uniform(state) -> float64 in [0, 1)`` (53 bits).
Each bulk event consumes exactly two uniforms (selection, then waiting time).  Runs with the
same seed and the same chunking into kernel calls are bit-identical, and so is a run restarted
from a checkpoint taken between calls.  (A different chunking changes only the round-off of the
tree's internal sums, which every call resets; that can alter a selection only if a uniform falls
within ~1e-16 of an interval boundary.)

Bulk event loop
---------------
``run_bulk_events(occ, disp, vac_site, vac_cell, vac_disp, tree, table, nx, ny, nz,
n_events, rng, collective, hops, clock) -> n_done``: see its docstring.  Per event: select
(group = vacancy, direction), move the vacancy, recompute its 8 rates from its local10 and those
of the vacancies in the local10 of the two changed sites; the tracer-displacement update is
deferred by DEFER events behind a prefetch, and the loop is compiled without numba's reference
counting (``_nrt=False``), since helpers taking array arguments would otherwise cost atomic
operations every event.  Building blocks for other loops: ``prefetch_row(arr, row)``
(LLVM prefetch hint) and ``popcount(x)``.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ionwire.structures.lattice import ENVIRONMENT_OFFSETS, HOP_HALF_UNITS, NEIGHBOUR_OFFSETS

VACANCY = 2
N_LOCAL = 10


def _build_local_tables():
    """LOCAL_OFFSETS[s, l] = (di, dj, dk, s') of local site l; ENV_LOCAL[s, d, m] = local index of
    environment site m of hop d."""
    local = np.zeros((3, N_LOCAL, 4), dtype=np.int64)
    local[:, :8] = NEIGHBOUR_OFFSETS
    for s in range(3):
        for l, sign in ((8, -1), (9, 1)):
            local[s, l, s] = sign
            local[s, l, 3] = s
    env_local = np.full((3, 8, 4), -1, dtype=np.int64)
    for s in range(3):
        rows = [tuple(r) for r in local[s]]
        for d in range(8):
            for m in range(4):
                env_local[s, d, m] = rows.index(tuple(ENVIRONMENT_OFFSETS[s, d, m]))
    return local, env_local


def _build_src_only():
    """SRC_ONLY[s, d, :] = the 5 local indices of a site that are neither the target of its hop d
    nor local sites of that target: after a hop, the only sites around the old vacancy site whose
    vacancies are not already found in the new site's local10."""
    out = np.zeros((3, 8, 5), dtype=np.int64)
    for s in range(3):
        src_loc = [tuple(r) for r in LOCAL_OFFSETS[s]]
        for d in range(8):
            o = LOCAL_OFFSETS[s, d]
            dst_loc = [tuple(o[:3] + LOCAL_OFFSETS[o[3], l, :3]) + (LOCAL_OFFSETS[o[3], l, 3],) for l in range(N_LOCAL)]
            only = [l for l in range(N_LOCAL) if l != d and src_loc[l] not in dst_loc]
            assert len(only) == 5
            out[s, d] = only
    return out


LOCAL_OFFSETS, ENV_LOCAL = _build_local_tables()
SRC_ONLY = _build_src_only()
# ENV_MASK[s, d] = bit mask over local10 of the 4 environment sites of hop d
ENV_MASK = np.zeros((3, 8), dtype=np.int64)
for _s in range(3):
    for _d in range(8):
        ENV_MASK[_s, _d] = sum(1 << int(_l) for _l in ENV_LOCAL[_s, _d])
HOP_DZ = np.ascontiguousarray(HOP_HALF_UNITS[:, :, 2])
HOP_VEC = np.ascontiguousarray(HOP_HALF_UNITS)
for _t in (LOCAL_OFFSETS, ENV_LOCAL, ENV_MASK, SRC_ONLY, HOP_DZ, HOP_VEC):
    _t.setflags(write=False)

# ---------------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------------
@intrinsic
def prefetch_row(typingctx, arr, row):
    """Hint the CPU to fetch the cache line of ``arr[row, 0]`` (``arr[row]`` for 1-d arrays) for
    writing; no effect on results.  (LLVM's llvm.prefetch: rw=1, locality=3, data cache.)"""
    if not isinstance(arr, types.Array) or not isinstance(row, types.Integer):
        return None
    sig = types.void(arr, row)

    def codegen(context, builder, signature, args):
        aryty, rowty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [context.cast(builder, args[1], rowty, types.intp)]
        idx += [context.get_constant(types.intp, 0)] * (aryty.ndim - 1)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def popcount(typingctx, x):
    """Number of set bits of an integer (LLVM ctpop: one instruction)."""
    if not isinstance(x, types.Integer):
        return None
    sig = x(x)

    def codegen(context, builder, signature, args):
        lt = context.get_value_type(signature.args[0])
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lt, [lt]), f"llvm.ctpop.i{lt.width}")
        return builder.call(fn, [args[0]])

    return sig, codegen


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _u(i):
    """An index known to be >= 0, as unsigned: numba then omits the negative-index wrap-around
    code (a compare and a conditional move per access in the hot loops)."""
    return np.uint64(i)


# ---------------------------------------------------------------------------------------------
# site arithmetic
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True, _nrt=False, forceinline=True)
def plane_of(k, s):
    """Anion plane index along z: 2k + (s == 2)."""
    return 2 * k + (1 if s == 2 else 0)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def local_coords(i, j, k, s, l, nx, ny, nz, periodic_z):
    """Coordinates of local site l (0..7 neighbours, 8/9 octahedron-opposite) of site (i,j,k,s).

    Returns (i2, j2, k2, s2, valid); valid is False beyond a bounded z end."""
    i2 = i + LOCAL_OFFSETS[s, l, 0]
    j2 = j + LOCAL_OFFSETS[s, l, 1]
    k2 = k + LOCAL_OFFSETS[s, l, 2]
    s2 = LOCAL_OFFSETS[s, l, 3]
    if i2 < 0:
        i2 += nx
    elif i2 >= nx:
        i2 -= nx
    if j2 < 0:
        j2 += ny
    elif j2 >= ny:
        j2 -= ny
    valid = True
    if k2 < 0:
        if periodic_z:
            k2 += nz
        else:
            valid = False
    elif k2 >= nz:
        if periodic_z:
            k2 -= nz
        else:
            valid = False
    return i2, j2, k2, s2, valid


@numba.njit(cache=True, _nrt=False, forceinline=True)
def local_sites(i, j, k, s, nx, ny, nz, periodic_z, out):
    """Fill out[0:10] with the local10 site indices of (i, j, k, s); -1 where cut by a z end."""
    for l in range(N_LOCAL):
        # branch-free wrap (offsets are -1, 0 or +1 cell)
        i2 = i + LOCAL_OFFSETS[s, l, 0]
        j2 = j + LOCAL_OFFSETS[s, l, 1]
        k2 = k + LOCAL_OFFSETS[s, l, 2]
        i2 += nx * ((i2 < 0) - (i2 >= nx))
        j2 += ny * ((j2 < 0) - (j2 >= ny))
        inside = (k2 >= 0) & (k2 < nz)
        if periodic_z:
            k2 += nz * ((k2 < 0) - (k2 >= nz))
            inside = True
        q = ((k2 * ny + j2) * nx + i2) * 3 + LOCAL_OFFSETS[s, l, 3]
        out[l] = q if inside else -1


def local_deltas(nx: int, ny: int) -> np.ndarray:
    """int64[3, 10]: site-index offset of local site l of a site on sublattice s when no
    coordinate wraps (for :func:`local_sites_fast`)."""
    o = LOCAL_OFFSETS
    return np.ascontiguousarray(((o[..., 2] * ny + o[..., 1]) * nx + o[..., 0]) * 3 + o[..., 3]
                                - np.arange(3)[:, None])


@numba.njit(cache=True, _nrt=False, forceinline=True)
def local_sites_fast(i, j, k, s, nx, ny, nz, periodic_z, deltas, out):
    """:func:`local_sites` with a fast path for cells away from every face (``deltas`` from
    :func:`local_deltas`)."""
    if 0 < i < nx - 1 and 0 < j < ny - 1 and 0 < k < nz - 1:
        site = ((k * ny + j) * nx + i) * 3 + s
        for l in range(N_LOCAL):
            out[_u(l)] = site + deltas[_u(s), _u(l)]
    else:
        local_sites(i, j, k, s, nx, ny, nz, periodic_z, out)


# ---------------------------------------------------------------------------------------------
# rates
# ---------------------------------------------------------------------------------------------
def rate_table(barriers_eV, nu0_per_s: float, kT_eV: float, field_half_eV: float = 0.0) -> np.ndarray:
    """float64[3, 5, 3]: rate (1/s) of a hop by species (0 Br, 1 Cl; 2 -> 0) with n_cl Cl among the
    4 environment sites and vacancy z step dz (index dz + 1).

    barriers_eV: float64[2, 2] [species, octahedron end member (0 Br-rich, 1 Cl-rich)], i.e.
    ``structures.parameters.Barriers.as_array()``; E_a(X, n) = E[X,0] + (E[X,1] - E[X,0]) n / 4.
    field_half_eV = e E (a/2) / 2 (eV) for a uniform field E along z (docs/model.md section 4).
    """
    b = np.asarray(barriers_eV, dtype=np.float64)
    if b.shape != (2, 2):
        raise ValueError(f"barriers_eV must have shape (2, 2), got {b.shape}")
    if not (nu0_per_s > 0 and kT_eV > 0):
        raise ValueError("nu0_per_s and kT_eV must be positive")
    table = np.zeros((3, 5, 3), dtype=np.float64)
    n = np.arange(5)
    for x in range(2):
        ea = b[x, 0] + (b[x, 1] - b[x, 0]) * n / 4.0
        for dz in (-1, 0, 1):
            table[x, :, dz + 1] = nu0_per_s * np.exp(-(ea - dz * field_half_eV) / kT_eV)
    return table


@numba.njit(cache=True, _nrt=False, forceinline=True)
def hop_rates8(occ, local, s, table, out):
    """Rates (1/s) of the 8 hops of a vacancy on sublattice s with local10 sites ``local``.

    Returns a bit mask of the local sites (bit l, l = 0..9) that hold a vacancy."""
    # gather the 10 occupancies once as bit masks (Cl; vacancy; missing), branch-free: the
    # species pattern is random, so branches on it would be mispredicted half of the time
    cl = 0
    vac = 0
    missing = 0
    for l in range(N_LOCAL):
        e = local[_u(l)]
        o = occ[_u(e if e >= 0 else 0)]
        bit = 1 << l
        missing |= bit if e < 0 else 0
        cl |= bit if o == 1 else 0
        vac |= bit if o == VACANCY else 0
    cl &= ~missing
    vac &= ~missing
    blocked = vac | missing
    for d in range(8):
        n_cl = popcount(cl & ENV_MASK[_u(s), _u(d)])
        r = table[_u((cl >> d) & 1), _u(n_cl), _u(HOP_DZ[_u(s), _u(d)] + 1)]
        out[_u(d)] = 0.0 if (blocked >> d) & 1 else r
    return vac


# ---------------------------------------------------------------------------------------------
# sum tree
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def tree_capacity(n_leaves):
    """Leaf capacity: 8 times a power of two, >= max(n_leaves, 8)."""
    g = 1
    while 8 * g < n_leaves:
        g *= 2
    return 8 * g


def tree_new(n_leaves: int) -> np.ndarray:
    """Zero sum tree with room for n_leaves leaves: float64[10 * tree_capacity(n_leaves) / 8]."""
    return np.zeros(10 * (tree_capacity(int(n_leaves)) // 8), dtype=np.float64)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _group_sum(tree, base):
    b = _u(base)
    return (((tree[b] + tree[b + 1]) + (tree[b + 2] + tree[b + 3]))
            + ((tree[b + 4] + tree[b + 5]) + (tree[b + 6] + tree[b + 7])))


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _propagate(tree, n, delta):
    # add the change of node n to its ancestors: independent read-modify-writes (no dependency
    # chain through the levels); round-off is removed by tree_build (see module docstring)
    while n > 1:
        n >>= 1
        tree[_u(n)] += delta


@numba.njit(cache=True)
def tree_build(tree):
    g = tree.shape[0] // 10
    tree[0] = 0.0
    for q in range(g):
        tree[g + q] = _group_sum(tree, 2 * g + 8 * q)
    for n in range(g - 1, 0, -1):
        tree[n] = tree[2 * n] + tree[2 * n + 1]


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree_update(tree, leaf, rate):
    g = tree.shape[0] // 10
    tree[2 * g + leaf] = rate
    n = g + (leaf >> 3)
    new = _group_sum(tree, 2 * g + 8 * (leaf >> 3))
    delta = new - tree[n]
    tree[n] = new
    _propagate(tree, n, delta)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree_update8(tree, first_leaf, rates8):
    g = tree.shape[0] // 10
    base = 2 * g + first_leaf
    for d in range(8):
        tree[_u(base + d)] = rates8[_u(d)]
    n = g + (first_leaf >> 3)
    new = _group_sum(tree, base)
    delta = new - tree[_u(n)]
    tree[_u(n)] = new
    _propagate(tree, n, delta)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _descend1(tree, n, x):
    prefetch_row(tree, 8 * n)
    tl = tree[_u(2 * n)]
    go = x >= tl
    return 2 * n + go, x - (tl if go else 0.0)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _descend2(tree, n, x):
    prefetch_row(tree, 8 * n)
    prefetch_row(tree, 16 * n)
    prefetch_row(tree, 16 * n + 8)
    a = tree[_u(2 * n)]
    b0 = tree[_u(4 * n)]
    b1 = tree[_u(4 * n + 2)]
    go1 = x >= a
    x -= a if go1 else 0.0
    tb = b1 if go1 else b0
    go2 = x >= tb
    x -= tb if go2 else 0.0
    return 4 * n + 2 * go1 + go2, x


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree_select_pair_prefetch(tree, u, pf_a, pf_b):
    """:func:`tree_select_pair` that also prefetches, two levels above the group level, the leaf
    lines of the 4 candidate groups and rows ``pf_a[q]``, ``pf_b[q]`` of two per-group arrays
    (e.g. the vacancy positions): the cache misses overlap the end of the descent."""
    g = tree.shape[0] // 10
    x = u * tree[1]
    n = 1
    # branch-free descent over the group totals (no mispredictions), two levels per step where
    # possible: the left child and both grandchildren candidates are loaded at once, so a step
    # costs one load latency; the lines two steps down are prefetched (the lower levels of the
    # tree live in L2, not L1) ...
    g4 = g >> 2
    while n < (g4 >> 1):
        n, x = _descend2(tree, n, x)
    while n < g4:
        n, x = _descend1(tree, n, x)
    if g >= 4:
        q0 = 4 * n - g  # first of the 4 groups still reachable
        for j in range(4):
            prefetch_row(tree, 2 * g + 8 * (q0 + j))
            prefetch_row(pf_a, q0 + j)
            prefetch_row(pf_b, q0 + j)
    while n < (g >> 1):
        n, x = _descend2(tree, n, x)
    while n < g:
        n, x = _descend1(tree, n, x)
    # ... then the group's 8 leaves (one cache line): count the prefix sums <= x (branch-free;
    # the prefix sums are formed as a tree, 3 adds deep, and stay non-decreasing under round-off;
    # a zero leaf adds nothing to the prefix, so it cannot be chosen except by round-off at the
    # group's end, which the check below catches)
    base = _u(2 * g + 8 * (n - g))
    l0 = tree[base]
    l2 = tree[base + 2]
    l4 = tree[base + 4]
    l6 = tree[base + 6]
    p1 = l0 + tree[base + 1]
    p3 = p1 + (l2 + tree[base + 3])
    p5 = p3 + (l4 + tree[base + 5])
    cnt = ((x >= l0) + (x >= p1) + (x >= p1 + l2) + (x >= p3) + (x >= p3 + l4) + (x >= p5)
           + (x >= p5 + l6))
    cnt = np.int64(cnt)
    found = cnt if tree[_u(base + cnt)] > 0.0 else -1
    if found < 0:
        # Rare: round-off (group-end, or internal sums drifted by difference updates) sent x
        # into a zero leaf.  Recompute every internal sum exactly (an all-zero subtree then sums
        # to exactly 0) and descend carefully, never entering a zero subtree.  Written inline:
        # a call would make numba reference-count ``tree`` on the hot path.
        for q in range(g):
            b = 2 * g + 8 * q
            tree[g + q] = (((tree[b] + tree[b + 1]) + (tree[b + 2] + tree[b + 3]))
                           + ((tree[b + 4] + tree[b + 5]) + (tree[b + 6] + tree[b + 7])))
        for m in range(g - 1, 0, -1):
            tree[m] = tree[2 * m] + tree[2 * m + 1]
        x = u * tree[1]
        n = 1
        while n < g:
            left = 2 * n
            tl = tree[left]
            if x < tl:
                n = left
            elif tree[left + 1] > 0.0:
                x -= tl
                n = left + 1
            else:
                n = left
        base = 2 * g + 8 * (n - g)
        last = -1
        for d in range(8):
            r = tree[base + d]
            if r > 0.0:
                last = d
                if found < 0:
                    if x < r:
                        found = d
                    else:
                        x -= r
        if found < 0:
            found = last  # -1 only if the total rate is zero (callers check that first)
    if found < 0:
        return np.int64(-1), np.int64(-1)
    return n - g, found


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree_select_pair(tree, u):
    """:func:`tree_select` as (group, d) with leaf = 8 group + d; the group comes straight from the
    descent, so loads that depend only on it can start before the leaf line arrives."""
    return tree_select_pair_prefetch(tree, u, tree, tree)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree_select(tree, u):
    grp, d = tree_select_pair(tree, u)
    return 8 * grp + d if d >= 0 else np.int64(-1)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree_total(tree):
    return tree[1]


@numba.njit(cache=True, _nrt=False, forceinline=True)
def tree_leaf(tree, leaf):
    return tree[2 * (tree.shape[0] // 10) + leaf]


# ---------------------------------------------------------------------------------------------
# xoshiro256++
# ---------------------------------------------------------------------------------------------
def rng_state_from_seed(seed=None) -> np.ndarray:
    """uint64[4] xoshiro256++ state from an int seed / SeedSequence / None (never all zero)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    state = ss.generate_state(4, dtype=np.uint64)
    if not state.any():  # pragma: no cover - probability 2^-256
        state[0] = np.uint64(1)
    return state


_U17 = np.uint64(17)
_U23 = np.uint64(23)
_U41 = np.uint64(41)
_U45 = np.uint64(45)
_U19 = np.uint64(19)
_U11 = np.uint64(11)
_U53_INV = 1.0 / 9007199254740992.0


@numba.njit(cache=True, _nrt=False, forceinline=True)
def rng_next(state):
    s0 = state[0]
    s1 = state[1]
    s2 = state[2]
    s3 = state[3]
    x = s0 + s3
    result = ((x << _U23) | (x >> _U41)) + s0
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _U45) | (s3 >> _U19)
    state[0] = s0
    state[1] = s1
    state[2] = s2
    state[3] = s3
    return result


@numba.njit(cache=True, _nrt=False, forceinline=True)
def rng_uniform(state):
    return np.float64(rng_next(state) >> _U11) * _U53_INV


# ---------------------------------------------------------------------------------------------
# bulk
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def init_bulk_rates(occ, vac_cell, tree, table, nx, ny, nz, periodic_z):
    """Fill the leaves of all vacancies (slot v -> leaves 8v..8v+7) and build the tree."""
    local = np.empty(N_LOCAL, dtype=np.int64)
    rates = np.empty(8, dtype=np.float64)
    base = 2 * (tree.shape[0] // 10)
    tree[:] = 0.0
    for v in range(vac_cell.shape[0]):
        local_sites(vac_cell[v, 0], vac_cell[v, 1], vac_cell[v, 2], vac_cell[v, 3], nx, ny, nz, periodic_z, local)
        hop_rates8(occ, local, vac_cell[v, 3], table, rates)
        for d in range(8):
            tree[base + 8 * v + d] = rates[d]
    tree_build(tree)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _refresh_vacancy(occ, vac_cell, v, tree, table, nx, ny, nz, periodic_z, deltas, local, rates):
    local_sites_fast(vac_cell[v, 0], vac_cell[v, 1], vac_cell[v, 2], vac_cell[v, 3], nx, ny, nz, periodic_z,
                     deltas, local)
    hop_rates8(occ, local, vac_cell[v, 3], table, rates)
    tree_update8(tree, 8 * v, rates)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _lowest_bit(mask):
    l = 0
    while not (mask >> l) & 1:
        l += 1
    return l


DEFER = 4  # displacement updates are applied this many events late (see run_bulk_events)


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _flush(e, disp, vac_disp, p_src, p_dst, p_v, p_h):
    """Apply the deferred displacement update of event slot e (see run_bulk_events)."""
    e = _u(e)
    src = _u(p_src[e])
    dst = _u(p_dst[e])
    v = p_v[e]
    hx = p_h[e, _u(0)]
    hy = p_h[e, _u(1)]
    hz = p_h[e, _u(2)]
    disp[src, _u(0)] = disp[dst, _u(0)] - hx
    disp[src, _u(1)] = disp[dst, _u(1)] - hy
    disp[src, _u(2)] = disp[dst, _u(2)] - hz
    disp[dst, _u(0)] = v
    vu = _u(v)
    vac_disp[vu, _u(0)] += hx
    vac_disp[vu, _u(1)] += hy
    vac_disp[vu, _u(2)] += hz


@numba.njit(cache=True, _nrt=False, forceinline=True)
def _slot_of(q, disp, p_dst, p_v, ev, n_pending):
    """Event slot of the vacancy on site q: the newest pending arrival at q, else disp[q, 0]."""
    for m in range(n_pending):
        e = (ev - 1 - m) & (DEFER - 1)
        if p_dst[e] == q:
            return p_v[e]
    return np.int64(disp[q, 0])


def run_bulk_events(occ, disp, vac_site, vac_cell, vac_disp, tree, table, nx, ny, nz,
                    n_events, rng, collective, hops, clock):
    """Advance a periodic bulk system by ``n_events`` hops (BKL, rejection-free).

    occ: uint8[n_sites] occupancy; disp: int32[n_sites, 3] displacement (half-units) of the atom
    on each site since the start, and for a vacancy site disp[site, 0] = its slot;
    vac_site: int64[n_vac]; vac_cell: int64[n_vac, 4] (i, j, k, s) of each vacancy;
    vac_disp: int64[n_vac, 3] vacancy displacements (half-units); tree: the sum tree with leaves
    8v + d (already built); table: float64[3, 5, 3] (see ``rate_table``); rng: uint64[4];
    collective: int64[2, 3] summed displacement of all Br / Cl atoms (half-units);
    hops: int64[2] hops made by Br / Cl; clock: float64[1] simulated time (s).
    All arrays are updated in place.  Returns the number of events done; fewer than n_events
    only if the total rate became zero (then nothing more can happen).

    A Python function: it allocates the scratch arrays and calls the compiled loop
    ``_bulk_core``, which runs without numba's reference counting (helpers taking arrays would
    otherwise cost atomic increments every event).  Not compiled itself, so that the loop is
    optimised once and not again inside a wrapper (a cold first run compiles less).
    """
    return _bulk_core(occ, disp, vac_site, vac_cell, vac_disp, tree, table, nx, ny, nz,
                      n_events, rng, collective, hops, clock,
                      np.empty(N_LOCAL, dtype=np.int64), np.empty(N_LOCAL, dtype=np.int64),
                      np.empty(8, dtype=np.float64), np.empty((3, N_LOCAL), dtype=np.int64),
                      np.zeros(DEFER, dtype=np.int64), np.zeros(DEFER, dtype=np.int64),
                      np.zeros(DEFER, dtype=np.int64), np.zeros((DEFER, 3), dtype=np.int64))


@numba.njit(cache=True, _nrt=False)
def _bulk_core(occ, disp, vac_site, vac_cell, vac_disp, tree, table, nx, ny, nz,
               n_events, rng, collective, hops, clock, local, scan, rates, deltas, p_src, p_dst, p_v, p_h):
    """The event loop of :func:`run_bulk_events` (scratch arrays passed in, no NRT).

    Memory latency: ``disp`` (12 bytes/site) is the one large array touched at random, and a
    cache miss on it stalls the in-order retirement of the whole event.  Its update is therefore
    deferred by DEFER events: the line is prefetched when the hop happens and the move is applied
    DEFER events later (in order); slot look-ups consult the pending hops first.  Every pending
    update is applied before returning, so the arrays are consistent between calls.
    """
    for s in range(3):
        for l in range(N_LOCAL):
            deltas[s, l] = ((LOCAL_OFFSETS[s, l, 2] * ny + LOCAL_OFFSETS[s, l, 1]) * nx
                            + LOCAL_OFFSETS[s, l, 0]) * 3 + LOCAL_OFFSETS[s, l, 3] - s
    for e in range(DEFER):
        p_dst[e] = -1
    n_pending = 0
    # exact internal sums at the start of every call (difference updates drift by round-off);
    # a run restarted from a checkpoint at a call boundary therefore repeats it bit for bit
    tree_build(tree)
    t = clock[0]
    done = n_events
    n_sites = occ.shape[0]
    row = 3 * nx
    plane = 3 * nx * ny
    for ev in range(n_events):
        total = tree[1]
        if not total > 0.0:
            done = ev
            break
        v, d = tree_select_pair_prefetch(tree, rng_uniform(rng), vac_cell, vac_site)
        vu = _u(v)
        src = vac_site[vu]
        # the occupancy lines around the vacancy (its row, the rows above and below, the planes
        # above and below) are needed for the new rates: ask for them before the hop direction
        # is known (addresses clamped into the array)
        prefetch_row(occ, src)
        prefetch_row(occ, min(src + row, n_sites - 1))
        prefetch_row(occ, max(src - row, 0))
        prefetch_row(occ, min(src + plane, n_sites - 1))
        prefetch_row(occ, max(src - plane, 0))
        ci = vac_cell[vu, _u(0)]
        cj = vac_cell[vu, _u(1)]
        ck = vac_cell[vu, _u(2)]
        cs = vac_cell[vu, _u(3)]
        i2, j2, k2, s2, valid = local_coords(ci, cj, ck, cs, d, nx, ny, nz, True)
        dst = ((k2 * ny + j2) * nx + i2) * 3 + s2
        x = occ[_u(dst)]
        # the atom moves dst -> src: opposite to the vacancy's hop vector
        hx = HOP_VEC[_u(cs), _u(d), _u(0)]
        hy = HOP_VEC[_u(cs), _u(d), _u(1)]
        hz = HOP_VEC[_u(cs), _u(d), _u(2)]
        occ[_u(src)] = x
        occ[_u(dst)] = VACANCY
        # deferred displacement update (prefetch now, apply DEFER events later)
        prefetch_row(disp, dst)
        prefetch_row(disp, src)
        e = ev & (DEFER - 1)
        if n_pending == DEFER:
            _flush(e, disp, vac_disp, p_src, p_dst, p_v, p_h)
        else:
            n_pending += 1
        eu = _u(e)
        p_src[eu] = src
        p_dst[eu] = dst
        p_v[eu] = v
        p_h[eu, _u(0)] = hx
        p_h[eu, _u(1)] = hy
        p_h[eu, _u(2)] = hz
        xu = _u(x)
        collective[xu, _u(0)] -= hx
        collective[xu, _u(1)] -= hy
        collective[xu, _u(2)] -= hz
        hops[xu] += 1
        vac_site[vu] = dst
        vac_cell[vu, _u(0)] = i2
        vac_cell[vu, _u(1)] = j2
        vac_cell[vu, _u(2)] = k2
        vac_cell[vu, _u(3)] = s2
        t += -np.log(1.0 - rng_uniform(rng)) / total
        # rates of the moved vacancy; its local10 holds every vacancy whose rates involve dst
        local_sites_fast(i2, j2, k2, s2, nx, ny, nz, True, deltas, local)
        vac = hop_rates8(occ, local, s2, table, rates)
        tree_update8(tree, 8 * v, rates)
        while vac:
            l = _lowest_bit(vac)
            vac &= vac - 1
            w = _slot_of(local[l], disp, p_dst, p_v, ev + 1, n_pending)
            _refresh_vacancy(occ, vac_cell, w, tree, table, nx, ny, nz, True, deltas, scan, rates)
        # vacancies whose rates involve src: src's local10 minus dst and minus dst's local10
        interior = 0 < ci < nx - 1 and 0 < cj < ny - 1 and 0 < ck < nz - 1
        for m in range(5):
            l = SRC_ONLY[_u(cs), _u(d), _u(m)]
            if interior:
                q = src + deltas[_u(cs), _u(l)]
            else:
                ia, ja, ka, sa, valid = local_coords(ci, cj, ck, cs, l, nx, ny, nz, True)
                q = ((ka * ny + ja) * nx + ia) * 3 + sa
            if occ[_u(q)] == VACANCY:
                w = _slot_of(q, disp, p_dst, p_v, ev + 1, n_pending)
                _refresh_vacancy(occ, vac_cell, w, tree, table, nx, ny, nz, True, deltas, scan, rates)
    # apply the pending displacement updates, oldest first
    for m in range(n_pending):
        _flush((done - n_pending + m) & (DEFER - 1), disp, vac_disp, p_src, p_dst, p_v, p_h)
    clock[0] = t
    return done
