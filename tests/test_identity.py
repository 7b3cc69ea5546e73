"""One run identity: parameters, data and code each change the id; the same inputs give the same id."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan_core.train import identity
from medgan_core.train.identity import code_fingerprint, data_fingerprint, run_folder, run_id

PARAMS = {"name": "cwgan_gp", "lr_G": 2e-4, "num_steps": 100, "widths": [16, 16]}


def arrays():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8), np.array([0, 1, 0, 1])


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A small copy of a package (two modules) and a notebook beside it, used as the code."""
    pkg = tmp_path / "medgan_core"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "dcgan.py").write_text("WIDTH = 32\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_demo.ipynb").write_text('{"cells": []}')
    monkeypatch.setattr(identity, "PACKAGE_DIR", pkg)
    return pkg


def test_same_inputs_same_id_and_folder(tmp_path):
    x, y = arrays()
    a = run_id(PARAMS, x, y)
    assert a == run_id(dict(reversed(list(PARAMS.items()))), x.copy(), y.copy())  # key order does not matter
    assert len(a) == 12 and int(a, 16) >= 0
    assert run_folder(tmp_path, "cwgan_gp", PARAMS, x, y) == tmp_path / f"cwgan_gp_{a}"


@pytest.mark.parametrize("key, value", [("lr_G", 1e-4), ("num_steps", 101), ("widths", [16, 32]), ("new", None)])
def test_a_changed_parameter_changes_the_id(key, value):
    x, y = arrays()
    assert run_id({**PARAMS, key: value}, x, y) != run_id(PARAMS, x, y)


def test_a_changed_array_byte_dtype_or_shape_changes_the_id():
    x, y = arrays()
    base = run_id(PARAMS, x, y)
    x2 = x.copy()
    x2[3, 7, 7, 2] ^= 1  # one bit of one byte
    assert run_id(PARAMS, x2, y) != base
    assert run_id(PARAMS, x, y.astype(np.int32)) != base  # same values, other dtype
    assert run_id(PARAMS, x.reshape(4, 8, 24), y) != base  # same bytes, other shape
    assert run_id(PARAMS, y, x) != base  # order counts
    assert data_fingerprint(torch.from_numpy(x)) == data_fingerprint(x)  # tensors hash as their arrays


def test_a_changed_source_or_notebook_changes_the_id(package):
    x, y = arrays()
    base, base_nb = run_id(PARAMS, x, y), run_id(PARAMS, x, y, notebook="01_demo")
    assert base_nb != base and run_id(PARAMS, x, y, notebook="01_demo.ipynb") == base_nb
    assert run_id(PARAMS, x, y, notebook="missing") == base  # an absent notebook adds nothing
    (package / "models" / "dcgan.py").write_text("WIDTH = 64\n")
    assert run_id(PARAMS, x, y) != base
    (package / "models" / "dcgan.py").write_text("WIDTH = 32\n")
    assert run_id(PARAMS, x, y) == base
    (package / "models" / "new.py").write_text("")
    assert run_id(PARAMS, x, y) != base
    (package / "models" / "new.py").unlink()
    (package.parent / "notebooks" / "01_demo.ipynb").write_text('{"cells": [1]}')
    assert run_id(PARAMS, x, y, notebook="01_demo") != base_nb and run_id(PARAMS, x, y) == base


def test_a_renamed_source_file_changes_the_code_fingerprint(package):
    before = code_fingerprint()
    shutil.move(package / "models" / "dcgan.py", package / "models" / "gan.py")
    assert code_fingerprint() != before


def test_the_real_package_is_fingerprinted():
    fp = code_fingerprint()
    assert len(fp) == 64 and fp == code_fingerprint()
    assert Path(identity.PACKAGE_DIR, "train", "identity.py").is_file()


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(TypeError, match="mapping"):
        run_id([("lr", 1)])
    with pytest.raises(TypeError, match="dtype object"):
        data_fingerprint(np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="without slashes"):
        run_folder(tmp_path, "a/b", PARAMS)


def test_notebook_parameters_reads_the_names_and_takes_the_values(package):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("seed = 0  # random seed\nlr_G = 2e-4  # learning rate\n")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, str(package.parent / "notebooks" / "02_params.ipynb"))
    values = identity.notebook_parameters("02_params", {"seed": 3, "lr_G": 1e-3, "x": 1, "other": 2})
    assert values == {"seed": 3, "lr_G": 1e-3}  # the resolved values, only the declared names
    with pytest.raises(KeyError, match="lr_G"):
        identity.notebook_parameters("02_params.ipynb", {"seed": 3})
    with pytest.raises(FileNotFoundError, match="not found"):
        identity.notebook_parameters("99_missing", {})
