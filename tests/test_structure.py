"""The study's structure: one home per concept, short notebook cells, one parameter vocabulary.

These tests read the source (AST, notebook JSON, README) and fail when a change puts a model,
loss, metric, figure or reader into an experiment module, lets experiment modules import each
other, grows a notebook cell past what a student reads at a glance, gives a shared parameter a
synonym, or leaves a figure function that nothing calls.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from medgan_core import plots
from medgan_core.params import parameters_cell, read_parameters
from medgan_core.runner import list_experiments

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "medgan_core"
EXPERIMENT_MODULES = sorted(p for p in (CORE / "experiments").glob("*.py") if p.name != "__init__.py")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# notebooks that read other runs' reports rather than data and train nothing (the seed grid's aggregate)
AGGREGATES = {e.name for e in list_experiments(ROOT) if e.aggregate}
GAN_NOTEBOOKS = [p for p in NOTEBOOKS if not p.stem.startswith("00_") and p.stem not in AGGREGATES]
MAX_EXPERIMENT_LINES = 160  # "about 150": the write-up's numbers and sentences, nothing else
MAX_CELL_LINES = 15
# Imports that would mean an experiment module holds a model, a loss, a metric, a figure or a reader.
FORBIDDEN_IMPORTS = ("torch", "matplotlib", "seaborn", "scipy", "sklearn", "PIL", "pydicom", "medgan_core.models",
                     "medgan_core.losses", "medgan_core.data", "medgan_core.train", "medgan_core.plots")
SYNONYMS = {"g_width": "width_G", "d_width": "width_D", "lambda_gp": "gp_weight", "lr": "lr_G / lr_D",
            "gan_steps": "num_steps", "num_epochs": "num_steps", "snapshots": "n_snapshots", "crop": "image_size"}


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", EXPERIMENT_MODULES, ids=lambda p: p.name)
def test_experiment_module_holds_only_its_writeup(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_EXPERIMENT_LINES, f"{path.name}: move shared code into the core"
    tree = ast.parse(source)
    for name in _imports(tree):
        assert not name.startswith("medgan_core.experiments"), f"{path.name} imports another experiment module ({name})"
        assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS), \
            f"{path.name} imports {name}: models, losses, metrics, figures and readers live in the core"
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            pytest.fail(f"{path.name} defines class {node.name}; classes (models, results) belong in the core")
        if isinstance(node, ast.FunctionDef):
            assert not re.match(r"(d|g)_|load_|read_|plot_|train|fit_", node.name), \
                f"{path.name} defines {node.name}(): a loss, reader, figure or trainer belongs in the core"


def test_experiment_modules_exist_and_old_study_modules_are_gone():
    names = {p.stem for p in EXPERIMENT_MODULES}
    assert {"bagan_blood_cells", "sqaggan_lung_nodules"} <= names
    assert not names & {"bagan_study", "sqaggan_study"}


def test_the_core_never_imports_an_experiment_module_except_through_notebooks():
    for path in CORE.rglob("*.py"):
        if path.parent.name == "experiments":
            continue
        for name in _imports(ast.parse(path.read_text())):
            assert not name.startswith("medgan_core.experiments"), f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_code_cells_are_short(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        n = len(cell.source.strip().splitlines())
        assert n <= MAX_CELL_LINES, f"{path.name} cell {i} has {n} lines; move the logic into medgan_core"


@pytest.mark.parametrize("path", GAN_NOTEBOOKS, ids=lambda p: p.stem)
def test_gan_notebooks_build_by_name_and_train_through_the_one_trainer(path):
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert "build_gan(" in code and "train_gan(" in code
    for pattern in (r"\.backward\(", r"torch\.optim\.", r"\bdefine_G\(", r"\bdefine_D\(", r"Generator\("):
        assert not re.search(pattern, code), f"{path.name}: {pattern} belongs in a family's train_step or the registry"


def _vocabulary() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### One parameter vocabulary"):]
    section = section[:section.index("\n## ")]
    return {name for row in re.findall(r"^\| (`[^|]+`) \|", section, flags=re.M) for name in re.findall(r"`(\w+)`", row)}


def test_readme_vocabulary_lists_the_shared_names():
    vocab = _vocabulary()
    assert {"seed", "image_size", "nz", "width_G", "width_D", "batch_size", "lr_G", "lr_D", "n_critic", "gp_weight",
            "num_steps", "time_budget_s", "ema_decay"} <= vocab


def test_parameters_shared_by_notebooks_are_in_the_vocabulary_and_have_no_synonyms():
    params = {p.stem: read_parameters(p) for p in NOTEBOOKS}
    vocab = _vocabulary()
    seen: dict[str, list[str]] = {}
    for nb, names in params.items():
        for name in names:
            seen.setdefault(name, []).append(nb)
            assert name not in SYNONYMS, f"{nb}: parameter {name!r} is a synonym; call it {SYNONYMS[name]}"
    shared = {name for name, nbs in seen.items() if len(nbs) > 1}
    assert shared - vocab == set(), f"shared parameters missing from the README vocabulary: {sorted(shared - vocab)}"
    for nb in (p.stem for p in GAN_NOTEBOOKS):
        missing = {"seed", "width_G", "width_D", "batch_size", "lr_G", "lr_D", "n_critic", "gp_weight", "num_steps",
                   "time_budget_s", "ema_decay"} - set(params[nb])
        assert not missing, f"{nb} lacks the shared parameters {sorted(missing)}"


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_params_files_use_the_notebook_names(path):
    names = read_parameters(ROOT / "notebooks" / f"{path.parent.name}.ipynb")
    overrides = yaml.safe_load(path.read_text()) or {}
    assert set(overrides) <= set(names), f"{path}: unknown names {sorted(set(overrides) - set(names))}"
    assert not set(overrides) & set(SYNONYMS)


def test_parameters_cells_hold_flat_literals_with_one_comment_each():
    for path in NOTEBOOKS:
        cell = parameters_cell(nbformat.read(path, as_version=4), path)
        for line in cell.strip().splitlines():
            assert re.match(r"^\w+ = .+  # \S", line), f"{path.name}: parameters line {line!r} needs a value and a comment"


def test_every_figure_function_is_called_somewhere():
    callers = [p.read_text() for p in NOTEBOOKS] + [p.read_text() for p in CORE.rglob("*.py") if p.name != "plots.py"]
    internal = (CORE / "plots.py").read_text()
    for name in plots.__all__:
        used = any(re.search(rf"\b{name}\(", text) for text in callers)
        used_inside = len(re.findall(rf"\b{name}\(", internal)) > 1  # a building block of another figure
        assert used or used_inside, f"plots.{name} is called by no notebook and no core module: remove it"


def test_the_aggregate_notebook_is_marked_so_and_left_out_of_all():
    from medgan_core.runner import get_experiments

    assert AGGREGATES == {"90_seed_grid"}
    assert not AGGREGATES & {e.name for e in get_experiments(["all"], ROOT)}
