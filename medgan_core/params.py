"""Notebook parameters: read the ``parameters`` cell, merge profile files and ``-p`` overrides.

The ``parameters`` cell holds flat literals, one per line with a comment (STYLE.md). Their
types are the types of the defaults; papermill itself only warns about unknown names, so the
runner checks names and types here, before anything runs.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, MutableMapping

import nbformat
import yaml


class ParameterError(ValueError):
    """An unknown parameter name, a wrongly typed value or a malformed override."""


@dataclass(frozen=True)
class Param:
    """One entry of a notebook's ``parameters`` cell.

    Args:
        name: the variable name.
        default: its literal default value.
        help: the comment after it.
    """

    name: str
    default: Any
    help: str

    @property
    def type_name(self) -> str:
        """The expected type: ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict`` or ``any``."""
        return "any" if self.default is None else type(self.default).__name__


def parameters_cell(nb: nbformat.NotebookNode, path: Path | str = "notebook") -> str:
    """Return the source of the cell tagged ``parameters``.

    Args:
        nb: the notebook.
        path: its path, for the error message.
    """
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell.source
    raise ParameterError(f"{path} has no cell tagged 'parameters'; tag the cell holding the defaults.")


def read_parameters(notebook: Path | str) -> dict[str, Param]:
    """Parse the ``parameters`` cell of a notebook into :class:`Param` entries.

    Args:
        notebook: path of the ``.ipynb`` file.
    """
    nb = nbformat.read(str(notebook), as_version=4)
    source = parameters_cell(nb, notebook)
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    params: dict[str, Param] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value = node.target.id, node.value
        else:
            raise ParameterError(f"{notebook}: the parameters cell may only hold 'name = literal' lines "
                                 f"(line {node.lineno}).")
        try:
            default = ast.literal_eval(value)
        except ValueError as err:
            raise ParameterError(f"{notebook}: parameter {name!r} (line {node.lineno}) is not a literal; "
                                 "compute derived values in the next cell.") from err
        params[name] = Param(name, default, comments.get(node.lineno, ""))
    return params


def describe(params: dict[str, Param]) -> str:
    """A listing of valid parameters for error messages: ``name (type, default): help``.

    Args:
        params: as returned by :func:`read_parameters`.
    """
    return "\n".join(f"  {p.name} ({p.type_name}, default {p.default!r}): {p.help}" for p in params.values())


def check_value(param: Param, value: Any, source: str) -> Any:
    """Return ``value`` if it fits ``param``'s type (ints are accepted for floats), else raise.

    Args:
        param: the declared parameter.
        value: the proposed value.
        source: where the value came from (for the message), e.g. ``"-p"`` or a params file.
    """
    expected = param.default
    ok = (
        expected is None
        or (isinstance(expected, bool) and isinstance(value, bool))
        or (isinstance(expected, int) and not isinstance(expected, bool) and isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(expected, float) and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (isinstance(expected, str) and isinstance(value, str))
        or (isinstance(expected, list) and isinstance(value, list))
        or (isinstance(expected, dict) and isinstance(value, dict))
    )
    if not ok:
        raise ParameterError(f"{source}: parameter {param.name!r} expects {param.type_name} "
                             f"(default {param.default!r}), got {type(value).__name__} {value!r}.")
    if isinstance(expected, float) and isinstance(value, int):
        value = float(value)
    return value


def _number_text(param: Param, value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: turn such text into the number a float or int
    parameter expects; anything else is returned unchanged (and judged by :func:`check_value`)."""
    if isinstance(value, str) and isinstance(param.default, (int, float)) and not isinstance(param.default, bool):
        try:
            number = float(value)
        except ValueError:
            return value
        if isinstance(param.default, float):
            return number
        return int(number) if number.is_integer() else value
    return value


INJECTED_MARK = "# Parameters"  # the first line of the cell papermill injects after the parameters cell


def check_injected(notebook: Path | str, namespace: MutableMapping[str, Any]) -> list[str]:
    """Check the parameters papermill injected into a running notebook, as ``medgan run`` would.

    Papermill only warns about unknown names, so a misspelled key in a ``-f`` file or ``-p``
    would run with the default. The kernel's input history (``In``) holds the injected cell
    (it starts with ``# Parameters``); every name it assigns must be a parameter of
    ``notebook`` and its value must have the parameter's type (numbers written as text, such
    as ``"1e-3"``, are converted in ``namespace``). Without an injected cell (Jupyter) nothing
    is checked.

    Args:
        notebook: path of the ``.ipynb`` file.
        namespace: the notebook's ``globals()``.

    Returns:
        The injected names.
    """
    params = read_parameters(notebook)
    injected: list[str] = []
    for source in namespace.get("In", []) or []:
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_MARK):
            injected += [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
                         for t in node.targets if isinstance(t, ast.Name)]
    unknown = sorted({n for n in injected if n not in params})
    if unknown:
        raise ParameterError(f"papermill injected unknown parameters {unknown} into {Path(notebook).name} (a misspelled "
                             f"key in a -f file or -p?). Valid parameters:\n{describe(params)}")
    for name in dict.fromkeys(injected):
        namespace[name] = check_value(params[name], _number_text(params[name], namespace[name]),
                                      "papermill parameters")
    return list(dict.fromkeys(injected))


def parse_override(text: str, params: dict[str, Param]) -> tuple[str, Any]:
    """Parse one ``-p name=value`` override against the declared parameters.

    Values are read as YAML (``3``, ``0.5``, ``true``, ``[1, 2]``); for ``str`` parameters the
    raw text is used as is.

    Args:
        text: ``name=value``.
        params: the notebook's parameters.
    """
    if "=" not in text:
        raise ParameterError(f"-p {text!r}: write overrides as name=value.")
    name, raw = text.split("=", 1)
    name = name.strip()
    if name not in params:
        raise ParameterError(f"-p {text!r}: unknown parameter {name!r}. Valid parameters:\n{describe(params)}")
    param = params[name]
    if isinstance(param.default, str):
        return name, raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ParameterError(f"-p {text!r}: cannot parse the value ({err}).") from err
    return name, check_value(param, _number_text(param, value), "-p")


def load_params_file(path: Path | str, params: dict[str, Param]) -> dict[str, Any]:
    """Read a ``params/EXP/PROFILE.yaml`` file of overrides and check every name and type.

    Args:
        path: the YAML file.
        params: the notebook's parameters.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParameterError(f"{path}: not valid YAML ({err}).") from err
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of parameter names to values.")
    unknown = [k for k in data if k not in params]
    if unknown:
        raise ParameterError(f"{path}: unknown parameters {unknown}. Valid parameters:\n{describe(params)}")
    return {k: check_value(params[k], _number_text(params[k], v), str(path)) for k, v in data.items()}
