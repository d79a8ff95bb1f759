"""Per-run seeds: every independent run of a campaign or ensemble gets its own 63-bit seed,
derived from a root seed and the run's key, so runs are independent of each other and each one
is reproducible on its own (a resumed campaign draws the same streams).

One derivation: numpy's SeedSequence over the words ``[root, *key]`` (non-negative integers),
its first 64-bit output shifted to 63 bits (a non-negative int64).  :func:`point_seed` keys a
run by its whole point (a JSON-able mapping such as ``{"x_cl": 0.3, "replica": 2}``) through a
SHA-256 word of the point's canonical JSON.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import numpy as np


def derive_seed(root: int, *key: int) -> int:
    """The 63-bit seed of the run ``key`` (non-negative integers) under the root seed ``root``."""
    words = [int(root), *(int(k) for k in key)]
    if any(w < 0 for w in words):
        raise ValueError(f"seed words must be non-negative integers, got {words}")
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def point_word(point: Mapping[str, Any]) -> int:
    """A 256-bit integer naming a point: SHA-256 of its key-sorted compact JSON."""
    blob = json.dumps(dict(point), sort_keys=True, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(blob).digest(), "little")


def point_seed(root: int, point: Mapping[str, Any]) -> int:
    """The seed of the run at ``point`` (every axis value and the replica number count)."""
    return derive_seed(root, point_word(point))
