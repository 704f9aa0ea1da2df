"""The package's import graph, read from the source (``ast``, never imported): no cycles between modules, no
import up the layers, no other module's private name.

Layers, lowest first: common < data < probes < training < scoring = label_issues < report < the top-level modules
(config, pipeline, repair, cli, stale, ...). A module may import its own layer and the ones below. Every import
counts, function-local ones and ``TYPE_CHECKING`` ones included: each is a dependency of the module that holds it.
Each test reports every violation it finds, with file, line and name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "latentgen"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "src" / PACKAGE
LAYERS = {"common": 0, "data": 1, "probes": 2, "training": 3, "scoring": 4, "label_issues": 4, "report": 5}
TOP_LAYER = 6  # the modules directly in the package: config, pipeline, repair, cli, stale, ...
ROOT_LAYER = 0  # the package's own __init__ (its version): below everything, so it may import nothing


@dataclass(frozen=True)
class Import:
    """One name an import statement brings from the package: ``module`` itself (``name`` None) or ``name``
    defined in ``module``."""

    importer: str
    line: int
    module: str
    name: str | None


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted name of every module of the package, to its file (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _base_module(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    package = package if is_package else package[:-1]
    package = package[: len(package) - (node.level - 1)]  # from .. import: one package up per extra dot
    return ".".join([*package, node.module] if node.module else package)


def imports_of(importer: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """Every import of package code in the module's source, at any depth (function-local ones too)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield Import(importer, node.lineno, alias.name, None)
        elif isinstance(node, ast.ImportFrom):
            base = _base_module(node, importer, is_package)
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:  # from latentgen.probes import family: the module
                    yield Import(importer, node.lineno, submodule, None)
                else:
                    yield Import(importer, node.lineno, base, alias.name)


def private_attributes_of(importer: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """``alias._name`` where ``alias`` is bound to a package module by an import of this module (e.g.
    ``from latentgen.scoring import checkpoint as scoring`` then ``scoring._fit``): a private name used across
    modules as surely as by ``from ... import _fit``."""
    tree = ast.parse(path.read_text(), str(path))
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in modules})
        elif isinstance(node, ast.ImportFrom):
            base = _base_module(node, importer, path.name == "__init__.py")
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            yield Import(importer, node.lineno, aliases[node.value.id], node.attr)


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return ROOT_LAYER
    if parts[1] in LAYERS:
        return LAYERS[parts[1]]
    return TOP_LAYER


def is_private(name: str | None) -> bool:
    return name is not None and name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def where(item: Import, modules: dict[str, Path], package_dir: Path) -> str:
    """``src/latentgen/x.py:12``: the import's file, from the directory that holds ``src``."""
    return f"{modules[item.importer].relative_to(package_dir.parent.parent)}:{item.line}"


# ------------------------------------------------------------------------------------------------------------
# The checks, as functions of a package directory (tested on a made-up package below)
# ------------------------------------------------------------------------------------------------------------


def import_graph(package_dir: Path) -> tuple[dict[str, Path], list[Import]]:
    modules = module_names(package_dir)
    return modules, [item for name, path in modules.items() for item in imports_of(name, path, modules)]


def upward_imports(package_dir: Path) -> list[str]:
    modules, imports = import_graph(package_dir)
    return [
        f"{where(item, modules, package_dir)}: {item.importer} (layer {layer_of(item.importer)}) imports "
        f"{item.module}{'.' + item.name if item.name else ''} (layer {layer_of(item.module)})"
        for item in imports
        if layer_of(item.module) > layer_of(item.importer)
    ]


def private_imports(package_dir: Path) -> list[str]:
    modules, imports = import_graph(package_dir)
    through_modules = [item for name, path in modules.items() for item in private_attributes_of(name, path, modules)]
    return [
        f"{where(item, modules, package_dir)}: {item.importer} uses {item.module}.{item.name}"
        for item in imports + through_modules
        if is_private(item.name) and item.module != item.importer
    ]


def import_cycles(package_dir: Path) -> list[str]:
    """Each cycle of modules (a strongly connected component of more than one module, or a module importing
    itself), with the imports that close it."""
    modules, imports = import_graph(package_dir)
    edges: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for item in imports:
        if item.module in modules:
            edges[item.importer].setdefault(item.module, item)
    cycles = []
    for component in strongly_connected(edges):
        members = set(component)
        if len(component) == 1 and component[0] not in edges[component[0]]:
            continue
        links = [
            f"{where(item, modules, package_dir)} {importer} -> {imported}"
            for importer in sorted(members)
            for imported, item in sorted(edges[importer].items())
            if imported in members
        ]
        cycles.append(f"cycle among {sorted(members)}: " + "; ".join(links))
    return cycles


def strongly_connected(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges[successor]))))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


# ------------------------------------------------------------------------------------------------------------
# The package
# ------------------------------------------------------------------------------------------------------------


def test_the_graph_is_read_from_every_module_and_every_depth() -> None:
    """Not vacuous: module-level, function-local and relative imports are all found."""
    modules, imports = import_graph(PACKAGE_DIR)
    assert {"latentgen.pipeline", "latentgen.probes.family", "latentgen.report.figures"} <= set(modules)
    found = {(item.importer, item.module) for item in imports}
    assert ("latentgen.probes.family", "latentgen.probes.paper") in found  # module level
    assert ("latentgen.pipeline", "latentgen.report.figures") in found  # inside pipeline.figure


def test_no_import_cycles() -> None:
    cycles = import_cycles(PACKAGE_DIR)
    assert not cycles, "\n".join(cycles)


def test_no_module_imports_a_higher_layer() -> None:
    violations = upward_imports(PACKAGE_DIR)
    assert not violations, f"{len(violations)} upward imports:\n" + "\n".join(violations)


def test_no_module_imports_another_modules_private_name() -> None:
    violations = private_imports(PACKAGE_DIR)
    assert not violations, f"{len(violations)} private names used across modules:\n" + "\n".join(violations)


# ------------------------------------------------------------------------------------------------------------
# The checks themselves, on a made-up package with one violation of each kind
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def made_up_package(tmp_path: Path) -> Path:
    package = tmp_path / "src" / PACKAGE
    files = {
        "__init__.py": "__version__ = '0'\n",
        "config.py": "from latentgen.report import summary\n",
        "common/__init__.py": "",
        "common/fileio.py": "def helper():\n    from latentgen.data.sizes import SIZES  # upward, function-local\n",
        "data/sizes.py": "SIZES = 1\n",
        "data/__init__.py": "",
        "data/labels.py": "from latentgen.common import fileio\nfrom .arrays import _private, PUBLIC\nLABELS = 1\n",
        "data/arrays.py": "import latentgen.data.labels as labels\n_private = labels._x\nPUBLIC = 2\n",
        "report/__init__.py": "",
        "report/summary.py": "from latentgen import __version__\nfrom latentgen.data.labels import LABELS\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


def test_the_checks_find_each_kind_of_violation(made_up_package: Path) -> None:
    assert [line.split(": ", 1)[1] for line in upward_imports(made_up_package)] == [
        "latentgen.common.fileio (layer 0) imports latentgen.data.sizes.SIZES (layer 1)"
    ]
    private = [line.split(": ", 1)[1] for line in private_imports(made_up_package)]
    assert sorted(private) == [
        "latentgen.data.arrays uses latentgen.data.labels._x",
        "latentgen.data.labels uses latentgen.data.arrays._private",
    ]
    (cycle,) = import_cycles(made_up_package)
    assert cycle.startswith("cycle among ['latentgen.data.arrays', 'latentgen.data.labels']")
    assert "src/latentgen/data/labels.py:2 latentgen.data.labels -> latentgen.data.arrays" in cycle


def test_every_name_the_benchmarks_and_workflow_scripts_import_from_the_package_exists() -> None:
    """Benchmarks run by hand (not in this suite), so a renamed function breaks them silently: bench_probes.py
    --family imported ``_fit_and_score`` for two sessions after it became ``fit_and_score``. Every
    ``from latentgen.x import y`` there, function-local ones included, must resolve."""
    import importlib

    root = PACKAGE_DIR.parent.parent
    missing = []
    for path in sorted([*(root / "benchmarks").glob("*.py"), *(root / "workflow" / "scripts").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ModuleNotFoundError:
                            missing.append(f"{path.relative_to(root)}:{node.lineno} {node.module}.{alias.name}")
    assert missing == []
