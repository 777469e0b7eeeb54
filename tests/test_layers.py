"""The packages read top-down: models <- genaug's base <- trainers <- genaug's library <- the app."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BASE = {
    "genaug.errors",
    "genaug.atomic",
    "genaug.version",
    "genaug.data",
    "genaug.idx",  # the idx: source (the MNIST family's IDX files)
    "genaug.runs",
    "genaug.synthetic",
    "genaug.outputs",
    "genaug.checksums",
    "genaug.manifest",
    "genaug.json_records",
    "genaug.grids",
    "genaug.teacher",
    "genaug.startup",  # how a process starts TensorFlow and sizes its tf.data pipelines; imports nothing
    "genaug.storage",  # local paths and tf.io.gfile URIs (gs://, ram://)
    "genaug.ram_path",
}
APP = {"genaug.cli", "genaug.demo", "genaug.__main__"}


def _imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at any depth (lazy imports inside functions count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in ("genaug", "models", "trainers")}


def _modules(package: str):
    for path in sorted((ROOT / package).glob("*.py")):
        name = f"{package}.{path.stem}" if path.stem != "__init__" else package
        yield name, _imports(path)


@pytest.mark.parametrize(("module", "imports"), list(_modules("models")))
def test_models_import_nothing_from_the_project(module, imports):
    assert not {name for name in imports if not name.startswith("models")}, module


@pytest.mark.parametrize(("module", "imports"), list(_modules("trainers")))
def test_trainers_import_only_models_and_genaugs_base(module, imports):
    allowed = {"genaug"} | BASE
    wrong = {n for n in imports if n.startswith("genaug") and n not in allowed and n.rsplit(".", 1)[0] not in BASE}
    assert not wrong, module


@pytest.mark.parametrize(("module", "imports"), list(_modules("genaug")))
def test_only_the_app_reaches_up(module, imports):
    if module in APP or module == "genaug":  # the package re-exports `train` (lazily) as its public API
        return
    assert not {n for n in imports if n.startswith("trainers")}, module
    assert not imports & APP, module


@pytest.mark.parametrize(("module", "imports"), [m for m in _modules("genaug") if m[0] in BASE])
def test_genaugs_base_imports_only_the_base_and_models(module, imports):
    wrong = {n for n in imports if not n.startswith("models") and n not in BASE | {"genaug"}}
    assert not {n for n in wrong if n.rsplit(".", 1)[0] not in BASE}, module


def test_the_lazy_api_names_are_not_shadowed_by_submodules():
    """`genaug.evaluate` must stay the function after `genaug.evaluation` (its module) is imported."""
    import importlib

    import genaug

    for name, module in genaug._LAZY.items():
        importlib.import_module(module)
        assert module.rsplit(".", 1)[-1] != name, f"module {module} shadows genaug.{name}"
        assert callable(getattr(genaug, name)) or isinstance(getattr(genaug, name), type), name


def _graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from genaug import shards`` counts as genaug.shards)."""
    modules = {name: imports for package in ("models", "trainers", "genaug") for name, imports in _modules(package)}
    return {
        name: {n if n in modules else n.rsplit(".", 1)[0] for n in imports} & modules.keys() - {name, "genaug"}
        for name, imports in modules.items()
    }


def test_no_import_circle():
    graph, state, path = _graph(), {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for child in sorted(graph[module]):
            if state.get(child) == "open":
                circle = path[path.index(child) :] + [child]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if child not in state:
                visit(child)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_no_function_in_the_library_is_longer_than_80_lines():
    """Long functions are where reordering one step silently breaks another: split them instead."""
    long = [
        f"{path.relative_to(ROOT)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted((ROOT / "genaug").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 80
    ]
    assert not long, "over 80 lines: " + ", ".join(long)
