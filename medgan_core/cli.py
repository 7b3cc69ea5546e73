"""The ``medgan`` command line.

    medgan list
    medgan run EXP [EXP ...] --profile {smoke,cpu,gpu} [-p name=value ...] [--data-dir DIR] [--out DIR]
               [--time-limit-min MIN]
    medgan run all --profile cpu
    medgan grid [EXP ...] --profile {smoke,cpu,gpu} --seeds S [S ...] [--cores N] [--grid-dir DIR]
                [--aggregate-out DIR] [--data-dir DIR] [--snakemake-profile DIR] [--dry-run]
    medgan data check [--data-dir DIR] [--only NAME ...]
    medgan index [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medgan_core.params import ParameterError
from medgan_core.run_state import is_disk_full


def _cmd_list(args: argparse.Namespace) -> int:
    from medgan_core.runner import TIME_LIMIT_MIN, list_experiments

    experiments = list_experiments()
    if not experiments:
        print("No experiments found (notebooks/*.ipynb).")
        return 1
    print(f"{'experiment':32} {'profiles':18} expected on 2 CPU cores")
    for exp in experiments:
        times = []
        for p in exp.profiles:
            if p in exp.expected_minutes:
                limit = TIME_LIMIT_MIN.get(p)
                times.append(f"{p} ~{exp.expected_minutes[p]:g} min" + (f" (limit {limit:g})" if limit else ""))
        print(f"{exp.name:32} {','.join(exp.profiles):18} {', '.join(times)}")
        print(f"{'':32} {exp.title}")
    limits = ", ".join(f"{p} {m:g} min" for p, m in TIME_LIMIT_MIN.items() if m)
    print(f"\nThe runner stops an experiment past its profile's limit ({limits}); change it with --time-limit-min.")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from medgan_core.runner import run_batch

    return run_batch(args.experiments, args.profile, args.p, data_dir=args.data_dir,
                     out_root=Path(args.out) if args.out else None, progress=not args.no_progress,
                     time_limit_min=args.time_limit_min)


def _cmd_grid(args: argparse.Namespace) -> int:
    import subprocess

    import yaml

    from medgan_core.grid import snakemake_command
    from medgan_core.runner import get_experiments, repo_root

    root = repo_root()
    names = args.experiments or yaml.safe_load((root / "workflow" / "config.yaml").read_text())["experiments"]
    chosen = get_experiments(list(names), root)
    aggregates = [e.name for e in chosen if e.aggregate]
    if aggregates:
        raise ParameterError(f"medgan grid: {', '.join(aggregates)} is the grid's aggregate, not an experiment to rerun "
                             "per seed; name the experiments (e.g. 01_bagan_blood_cells).")
    command, config = snakemake_command(root, [e.name for e in chosen], args.profile, args.seeds, grid_dir=args.grid_dir,
                                        cores=None if args.snakemake_profile and not args.cores else args.cores,
                                        aggregate_out=args.aggregate_out or "",
                                        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else "",
                                        dry_run=args.dry_run,
                                        extra=["--profile", args.snakemake_profile] if args.snakemake_profile else ())
    print(f"[medgan] grid config: {config}\n[medgan] {' '.join(command)}", flush=True)
    return subprocess.run(command, cwd=root).returncode


def _whole(text: str) -> int:
    """A ``--seeds`` or ``--cores`` value: an integer >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"need an integer >= 0, got {text!r}")
    return int(text)


def _cmd_data_check(args: argparse.Namespace) -> int:
    from medgan_core.data.check import run_check

    return run_check(args.data_dir, args.only)


def _cmd_index(args: argparse.Namespace) -> int:
    from medgan_core.report.index import build_index
    from medgan_core.runner import repo_root

    print(build_index(Path(args.out) if args.out else repo_root() / "reports"))
    return 0


def _folder_or_none(text: str) -> str | None:
    """``--data-dir ""`` means "not given" for every command (``$MEDGAN_DATA``, then ``./data``)."""
    return text or None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``medgan`` command."""
    parser = argparse.ArgumentParser(prog="medgan", description="Run the medgan study's experiment notebooks "
                                     "and check its data.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="experiments, their profiles and expected time on 2 CPU cores")
    p_list.set_defaults(func=_cmd_list)

    p_run = sub.add_parser("run", help="execute experiments and render their reports")
    p_run.add_argument("experiments", nargs="+", help="experiment names (e.g. 00_data_tour) or 'all'")
    p_run.add_argument("--profile", default="cpu", help="smoke, cpu (default) or gpu")
    p_run.add_argument("-p", action="append", default=[], metavar="NAME=VALUE",
                       help="override one notebook parameter (repeatable)")
    p_run.add_argument("--data-dir", default=None, type=_folder_or_none,
                       help="data folder (default $MEDGAN_DATA, then ./data; an empty value means the default)")
    p_run.add_argument("--out", default=None, help="reports folder (default ./reports)")
    p_run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p_run.add_argument("--time-limit-min", type=float, default=None, metavar="MIN",
                       help="stop each experiment past MIN minutes of wall time, status timed_out "
                            "(default: the profile's limit, cpu 40; 0: no limit)")
    p_run.set_defaults(func=_cmd_run)

    p_grid = sub.add_parser("grid", help="rerun experiments once per seed with Snakemake, then render the aggregate "
                            "report (workflow/Snakefile)")
    p_grid.add_argument("experiments", nargs="*", help="experiment names or 'all' (default: workflow/config.yaml's)")
    p_grid.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"], help="the runs' profile (default cpu)")
    p_grid.add_argument("--seeds", nargs="+", type=_whole, default=[0, 1, 2], metavar="S",
                        help="one run per seed (default 0 1 2; an across-seed interval needs at least 3)")
    p_grid.add_argument("--cores", type=_whole, default=0,
                        help="cores for all jobs together (default: every core; with --snakemake-profile, the profile's)")
    p_grid.add_argument("--grid-dir", default="grid",
                        help="where the seed runs go (default grid/; a relative path is taken from the study root)")
    p_grid.add_argument("--aggregate-out", default=None, metavar="DIR",
                        help="reports folder of the aggregate (default GRID/aggregate; 'reports' publishes it)")
    p_grid.add_argument("--data-dir", default=None, type=_folder_or_none, help="data folder (default $MEDGAN_DATA, then ./data)")
    p_grid.add_argument("--dry-run", "-n", action="store_true", help="list the jobs Snakemake would run, run nothing")
    p_grid.add_argument("--snakemake-profile", default=None, metavar="DIR",
                        help="a Snakemake profile folder, e.g. workflow/profiles/slurm to submit every run to Slurm")
    p_grid.set_defaults(func=_cmd_grid)

    p_data = sub.add_parser("data", help="data commands")
    data_sub = p_data.add_subparsers(dest="data_command", required=True)
    p_check = data_sub.add_parser("check", help="verify every dataset: presence, counts, every file read, checksums")
    p_check.add_argument("--data-dir", default=None, type=_folder_or_none,
                         help="data folder (default $MEDGAN_DATA, then ./data; an empty value means the default)")
    p_check.add_argument("--only", nargs="+", default=None, metavar="NAME", help="check only these datasets")
    p_check.set_defaults(func=_cmd_data_check)

    p_index = sub.add_parser("index", help="rebuild reports/index.html")
    p_index.add_argument("--out", default=None, help="reports folder (default ./reports)")
    p_index.set_defaults(func=_cmd_index)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``medgan`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ParameterError as err:
        print(f"medgan: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medgan: interrupted; the report folder holds what was done so far, and its run.json says "
              "\"interrupted\".", file=sys.stderr)
        return 130
    except OSError as err:
        if is_disk_full(err):
            print(f"medgan: the disk is full ({err.filename or 'writing a report or checkpoint'}): free some space "
                  "(old runs/ folders can go) and run again.", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
