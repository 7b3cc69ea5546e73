"""``medgan data check``: is every dataset there, complete and readable?

For each dataset of the registry: found or missing; counts per split and class; every file
actually read (images decoded, npz arrays loaded, XML and CSV parsed, by the reader's
``verify``); checksums verified against ``SHA256SUMS`` where present and against the digests
the data README gives for the other files; one clear line per bad file; where to obtain what
is missing. Data problems never end in a Python traceback.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from medgan_core.data.errors import DataError
from medgan_core.data.files import sha256_of, verify_sha256sums
from medgan_core.data.paths import resolve_data_dir
from medgan_core.data.registry import DATASETS, DatasetInfo


@dataclass
class DatasetReport:
    """What the check found for one dataset.

    Args:
        info: the dataset.
        found: whether its folder exists.
        counts: samples per split and class (a pivot table), if readable.
        files_read: number of files fully read.
        checksums: number of files whose sha256 was verified.
        problems: one line per problem.
        seconds: time taken.
    """

    info: DatasetInfo
    found: bool
    counts: pd.DataFrame | None = None
    files_read: int = 0
    checksums: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Found and without problems."""
        return self.found and not self.problems


def check_dataset(info: DatasetInfo, data_dir: str | os.PathLike | None = None) -> DatasetReport:
    """Check one dataset completely (see the module docstring).

    Args:
        info: the dataset.
        data_dir: the data folder.
    """
    t0 = time.perf_counter()
    folder = resolve_data_dir(data_dir) / info.folder
    if not folder.is_dir():
        return DatasetReport(info, found=False, problems=[f"missing folder {folder}"])
    report = DatasetReport(info, found=True)
    reader = info.reader()
    try:
        index = reader.load_index(data_dir=resolve_data_dir(data_dir))
        report.counts = pd.crosstab(index["label"], index["split"], margins=True, margins_name="total")
    except DataError as err:
        report.problems.append(str(err).splitlines()[0] if str(err) else type(err).__name__)
    except Exception as err:  # an unexpected failure is still reported as a line, not a traceback
        report.problems.append(f"{info.folder}: index could not be built ({type(err).__name__}: {err})")
    try:
        report.files_read, problems = reader.verify(data_dir=resolve_data_dir(data_dir))
        report.problems.extend(problems)
    except DataError as err:
        report.problems.append(str(err).splitlines()[0])
    except Exception as err:
        report.problems.append(f"{info.folder}: verification failed ({type(err).__name__}: {err})")
    if info.sha256sums:
        try:
            n, problems = verify_sha256sums(folder)
            report.checksums += n
            report.problems.extend(problems)
        except DataError as err:
            report.problems.append(str(err).splitlines()[0])
    for name, expected in info.known_sha256.items():
        path = folder / name
        if not path.is_file():
            report.problems.append(f"{path}: missing")
        elif sha256_of(path) != expected:
            report.problems.append(f"{path}: sha256 mismatch (file changed or damaged; replace it)")
        else:
            report.checksums += 1
    # The same problem may be found by the reader and by the checksum pass; keep one line each.
    report.problems = list(dict.fromkeys(report.problems))
    report.seconds = time.perf_counter() - t0
    return report


def format_report(report: DatasetReport) -> str:
    """Human-readable lines for one dataset.

    Args:
        report: the result of :func:`check_dataset`.
    """
    info = report.info
    if not report.found:
        return (f"MISSING  {info.folder}/  ({info.title})\n"
                f"         expected layout: {info.layout}\n"
                f"         obtain it from: {info.obtain}\n"
                f"         licence: {info.licence}")
    state = "OK      " if report.ok else "PROBLEMS"
    lines = [f"{state} {info.folder}/  ({info.title}): {report.files_read} files read, "
             f"{report.checksums} checksums verified, {report.seconds:.1f} s"]
    if report.counts is not None:
        lines += ["         " + line for line in report.counts.to_string().splitlines()]
    for problem in report.problems[:50]:
        lines.append(f"  BAD    {problem}")
    if len(report.problems) > 50:
        lines.append(f"  ...    and {len(report.problems) - 50} more problems")
    return "\n".join(lines)


def run_check(data_dir: str | os.PathLike | None = None, names: list[str] | None = None,
              echo=print) -> int:
    """Check every dataset (or the named ones) and print a report.

    Args:
        data_dir: the data folder.
        names: dataset names to check (default all).
        echo: where lines go.

    Returns:
        0 if every dataset is found and verified, 1 otherwise.
    """
    root = resolve_data_dir(data_dir)
    echo(f"Data folder: {root.resolve()}")
    if not root.is_dir():
        echo(f"The data folder does not exist. Create it (or point --data-dir / MEDGAN_DATA at it) and "
             "place the datasets below in it; README.md section 'Data' says where each comes from.")
    infos = [d for d in DATASETS if names is None or d.name in names or d.folder in names]
    bad = 0
    for info in infos:
        report = check_dataset(info, root)
        echo(format_report(report))
        bad += not report.ok
    echo(f"{len(infos) - bad} of {len(infos)} datasets found and verified." +
         ("" if not bad else f" {bad} missing or with problems: see the lines above."))
    return 0 if bad == 0 else 1
