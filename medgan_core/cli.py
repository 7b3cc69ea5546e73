"""The ``medgan`` command line.

    medgan list
    medgan run EXP [EXP ...] --profile {smoke,cpu,gpu} [-p name=value ...] [--data-dir DIR] [--out DIR]
               [--time-limit-min MIN]
    medgan run all --profile cpu
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
