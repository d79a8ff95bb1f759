"""Run the device kMC: a biased Br | Cl nanowire between two electrodes, with H5MD output.

CONFIG.toml holds the shared physical parameters ([material], [vacancies], [geometry],
[electrodes]; see continuum/parameters.py) and the kMC's own tables:

  [kmc]     nx, ny (cells across the wire), field_V_per_um (applied field, + = forward),
            duration_s, seed, hops (false: reactions only), max_events (0: no limit)
  [bias]    instead of field_V_per_um and duration_s: a bias protocol (structures/bias.py), e.g.
            steps = [{field_V_per_um = 4.0, duration_s = 7200.0}, {field_V_per_um = 0.0, duration_s = 3600.0}];
            exact at every switch (the next event is drawn anew), ramps as steps of ramp_step_s
  [output]  frame_interval_s, species (write per-site species every frame)

With [bias] the trajectory also holds, every frame, the bias voltage, the front position and the
signed migration length, the ionic current of each halide at each contact, the charge passed and
the halide exchange counters (/observables; kmc/h5md.py).

The trajectory OUT.h5 is H5MD 1.1 (layout in the README); frames are flushed as they are written,
so a killed run keeps every completed frame.  --checkpoint-every N writes the exact state
(occupancy, vacancies, time, counters, electrostatics, RNG) to OUT.h5.checkpoint every N events
(or every N wall seconds with a suffix s, e.g. 60s; default every 300 s of wall time); a checkpoint
is always written at the end, and on Ctrl-C or SIGTERM before the program exits (status 130).
--resume continues a killed run from its checkpoint and ends bit-identical to an uninterrupted run;
a damaged, truncated or foreign OUT.h5 is refused and left untouched.

example: ionwire device runs/device_small.toml -o runs/out/device_small.h5 --checkpoint-every 30s
"""
from __future__ import annotations

import argparse
import errno
import json
import sys

from ._output import claim, sigterm_as_interrupt

DEFAULT_CHECKPOINT_EVERY = "300s"
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)


def _disk_error(args, exc: OSError) -> str:
    """The one line for a write that the disk refused: what is on disk now, and how to go on."""
    import os

    from ionwire.kmc.h5md import TrajectoryError, checkpoint_path, open_trajectory
    from ionwire.structures import hdf5

    what = f"cannot write {exc.filename or args.output}: {exc.strerror or exc}"
    ck = checkpoint_path(args.output)
    if not os.path.exists(args.output):
        state = "nothing was written"
    elif hdf5.ABANDONED:  # the trajectory is still open inside HDF5; its frames_complete is the truth
        state = f"{args.output} holds the frames counted in its frames_complete attribute"
    else:
        try:
            with open_trajectory(args.output) as traj:
                state = f"{args.output} is incomplete: {traj.n_frames} complete frames"
        except (TrajectoryError, OSError):
            state = f"{args.output} is unusable"
    if os.path.exists(ck):
        return f"{what}; {state}; free some space, then continue with --resume (from {ck})"
    return f"{what}; {state} and there is no checkpoint yet; free some space, then start again with --overwrite"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.toml", help="device run configuration (TOML)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="H5MD trajectory to write")
    parser.add_argument("--resume", action="store_true", help="continue OUT.h5 from OUT.h5.checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT.h5")
    parser.add_argument("--checkpoint-every", default=DEFAULT_CHECKPOINT_EVERY, metavar="N[s]",
                        help="checkpoint every N events, or every N wall seconds with a suffix s "
                             f"(e.g. 60s; default {DEFAULT_CHECKPOINT_EVERY})")
    parser.add_argument("--seed", type=int, default=None, help="override [kmc].seed")
    parser.add_argument("--json", action="store_true", help="print the run summary as one JSON object")


def run(args) -> int:
    from ionwire.coupling.cli import UserError
    from ionwire.kmc.device import load_config, parse_checkpoint_every, replace_settings, run_device
    from ionwire.kmc.h5md import TrajectoryError

    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    config = load_config(args.config)
    if args.seed is not None:
        from ionwire.structures.parameters import check_seed

        config = replace_settings(config, seed=check_seed(args.seed, "--seed"))
    every = parse_checkpoint_every(args.checkpoint_every)

    def progress(frame, n_frames, sim):
        if not args.quiet:
            print(f"frame {frame}/{n_frames}  t = {sim.time_s:.4g} s  events = {sim.events}  "
                  f"vacancies = {sim.n_vacancies}", file=sys.stderr)

    try:
        with claim(args.output, check_existing=False), sigterm_as_interrupt():
            summary = run_device(config, args.output, resume=args.resume, checkpoint_every=every,
                                 overwrite=args.overwrite, progress=progress)
    except TrajectoryError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise UserError(_disk_error(args, exc)) from None
    except KeyboardInterrupt as exc:
        detail = f" ({exc})" if str(exc) else ""
        print(f"ionwire device: interrupted{detail}; continue with: ionwire device {args.config} "
              f"-o {args.output} --resume", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {summary['output']}: {summary['frames']} frames, t = {summary['time_s']:.4g} s, "
              f"{summary['events']} events, {summary['vacancies']} vacancies, {summary['wall_s']:.1f} s wall")
    return 0
