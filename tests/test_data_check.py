"""`medgan data check`: every dataset found and verified; missing and damaged data named, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_data import truncate_file, write_bccd, write_isic, write_lidc
from medgan_core.data.registry import DATASETS


def data_check(data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MEDGAN_DATA"}
    return subprocess.run([sys.executable, "-m", "medgan_core.cli", "data", "check", "--data-dir", str(data_dir), *extra],
                          capture_output=True, text=True, timeout=600, env=env)


def test_empty_folder_says_what_is_missing_and_where_to_get_it(tmp_path):
    out = data_check(tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr
    for info in DATASETS:
        assert f"MISSING  {info.folder}/" in out.stdout
        assert info.obtain in out.stdout
    assert f"0 of {len(DATASETS)} datasets found and verified" in out.stdout


def test_absent_data_folder(tmp_path):
    out = data_check(tmp_path / "nowhere")
    assert out.returncode == 1 and "does not exist" in out.stdout and "Traceback" not in out.stderr


def test_fixture_datasets_verified_then_damage_named(tmp_path):
    write_isic(tmp_path)
    write_bccd(tmp_path)
    write_lidc(tmp_path)
    ok = data_check(tmp_path, "--only", "isic2017", "bccd", "lidc")
    assert "OK       isic2017_256/" in ok.stdout, ok.stdout
    # The fixtures are not the staged files, so the digests the data README gives must not match:
    # the check reports that (and nothing about the fixture's images or XML files).
    assert "lidc_nodule_slices_512.npz: sha256 mismatch" in ok.stdout
    assert "wbc_subtype_labels.csv: sha256 mismatch" in ok.stdout
    assert not [line for line in ok.stdout.splitlines() if "BAD" in line and (".xml" in line or ".jpg" in line)]

    jpeg = sorted((tmp_path / "isic2017_256" / "images" / "train").glob("*.jpg"))[0]
    truncate_file(jpeg, keep=0.3)
    xml = sorted((tmp_path / "bccd_blood" / "Annotations").glob("*.xml"))[0]
    xml.write_text("<annotation><object>")
    bad = data_check(tmp_path, "--only", "isic2017", "bccd")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stdout + bad.stderr
    assert "PROBLEMS isic2017_256/" in bad.stdout and "PROBLEMS bccd_blood/" in bad.stdout
    bad_lines = [line for line in bad.stdout.splitlines() if line.strip().startswith("BAD")]
    assert any(jpeg.name in line for line in bad_lines), bad.stdout
    assert any(xml.name in line for line in bad_lines), bad.stdout


@pytest.mark.slow
def test_real_data_all_found_and_verified(real_data):
    out = data_check(real_data)
    assert out.returncode == 0, out.stdout[-3000:]
    assert f"{len(DATASETS)} of {len(DATASETS)} datasets found and verified." in out.stdout
    # every staged checksum listing was used
    assert "2755 checksums verified" in out.stdout  # ISIC: 2,750 images + 5 CSVs
