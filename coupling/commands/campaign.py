"""Run a campaign: every point of a config's [sweep], in parallel, resumable.

CONFIG.toml names a run type at its top (run = "continuum", "bulk", ...) and sweeps some of its
parameters in a [sweep] table (lists combine as a product, or zip; replicas = N repeats points).
Outputs go to runs/out/<config stem>/ (or -o DIR): one folder per run named by its stable id,
index.json with every result, summary.json and the figures of the run type.

Execution: a local process pool (--workers N, default all cores); --scheduler local starts a
dask LocalCluster; --scheduler tcp://HOST:PORT uses a running dask cluster (e.g. dask-jobqueue).
Ctrl-C stops cleanly (exit 130); --resume continues: finished runs are kept, unfinished ones redone;
--overwrite starts the campaign in the folder again: it removes only what a campaign wrote there
(listed in the folder's manifest) and refuses a folder that holds anything else; a new campaign
needs a new or empty folder.  SIGTERM stops like Ctrl-C in every phase.

examples:
  ionwire campaign runs/fig1e.toml
  ionwire campaign runs/fig1e.toml --workers 2 --resume
  ionwire campaign runs/onsager.toml --scheduler tcp://10.0.0.5:8786 -o /scratch/onsager
"""
from __future__ import annotations

import json
import sys


def add_arguments(parser) -> None:
    parser.add_argument("config", metavar="CONFIG.toml", help="campaign config (TOML with run = \"...\")")
    parser.add_argument("-o", "--output", metavar="DIR", default=None,
                        help="campaign folder (default: runs/out/<config stem>/)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="local worker processes (default: all usable cores); also the size of "
                             "a --scheduler local cluster")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS|local",
                        help="run on dask.distributed: 'local' (LocalCluster) or a scheduler address")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the campaign in the folder: skip finished runs, redo the rest")
    again.add_argument("--overwrite", action="store_true",
                       help="discard a previous campaign in the folder and start again")
    parser.add_argument("--scheduler-timeout", type=float, default=30.0, metavar="S",
                        help="seconds to wait for a --scheduler address to answer (default 30)")
    parser.add_argument("--dry-run", action="store_true", help="validate the config and list the runs only")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args) -> int:
    from ionwire.coupling.campaign import (CampaignError, CampaignInterrupted, default_outdir, load_spec,
                                   run_campaign)
    from ionwire.coupling.cli import UserError

    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers: must be >= 1, got {args.workers}")
    if not 0 < args.scheduler_timeout < 1e6:
        raise UserError(f"--scheduler-timeout: must be a positive number of seconds, got {args.scheduler_timeout}")
    spec = load_spec(args.config)
    if args.dry_run:
        out = args.output or default_outdir(spec)
        rows = [{"id": rp.id, **rp.point} for rp in spec.points]
        if args.json:
            print(json.dumps({"run": spec.run_name, "output": str(out), "n_runs": len(rows), "runs": rows}))
        else:
            print(f"{spec.path}: run type {spec.run_name!r}, {len(rows)} run{'s' if len(rows) != 1 else ''} -> {out}")
            for r in rows:
                print("  " + " ".join(f"{k}={v}" for k, v in r.items()))
        return 0
    try:
        report = run_campaign(spec, args.output, workers=args.workers, scheduler=args.scheduler,
                              resume=args.resume, overwrite=args.overwrite,
                              progress=not args.no_progress, connect_timeout_s=args.scheduler_timeout)
    except CampaignError as exc:
        raise UserError(str(exc)) from None
    except CampaignInterrupted as exc:
        out = f" -o {args.output}" if args.output else ""
        print(f"ionwire campaign: interrupted, {exc.done} of {exc.total} runs done; "
              f"continue with: ionwire campaign {args.config}{out} --resume", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps({
            "run": spec.run_name, "output": str(report.outdir), "n_runs": report.n_runs,
            "n_resumed": report.n_resumed, "n_new": report.n_new, "n_failed": len(report.failed),
            "executor": report.executor, "wall_s": report.wall_s, "run_wall_s": report.run_wall_s,
            "prepare_wall_s": report.prepare_wall_s,
            "summary": str(report.summary_path) if report.summary_path else None}))
    else:
        print(f"campaign {spec.stem}: {report.n_runs} runs ({report.n_new} new, {report.n_resumed} resumed, "
              f"{len(report.failed)} failed) on {report.executor} in {report.wall_s:.1f} s -> {report.outdir}")
        if report.summary_path:
            headline = report.summary.get("headline") if isinstance(report.summary, dict) else None
            print(f"summary: {report.summary_path}" + (f"\n{headline}" if headline else ""))
    if report.failed:
        first = next(iter(report.failed.items()))
        print(f"ionwire campaign: error: {len(report.failed)} runs failed (first {first[0]}: {first[1]}); "
              f"tracebacks in {report.outdir / 'failed'}; --resume retries them", file=sys.stderr)
        return 1
    return 0
