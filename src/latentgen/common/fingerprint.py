"""Fingerprints of the code each workflow stage runs, so Snakemake reruns exactly the stages a code change touched.

A stage's code is its workflow script plus every definition of the ``latentgen`` package that the script
reaches: the names it uses, followed through imports (module-level and function-local) and through the
definitions they name, transitively.  ``pipeline.score`` thus reaches ``scoring`` and ``probes`` but
not ``figures``, although all stages live in one ``pipeline`` module.  The code is parsed (``ast``), never
imported: this runs each time Snakemake parses the workflow, without torch.

A definition's fingerprint is a hash of its syntax tree without docstrings, so a comment, a docstring,
formatting or a file's time never changes it, and any other change to code a stage reaches does.  What is not
followed: code outside the package (third-party libraries; their versions are the environment's business)
and names looked up dynamically by string.

The stages that feed training (``TRAINING_STAGES``) are the exception: retraining costs GPU-days, so their
jobs depend on the version number in ``workflow/training_code.json`` instead, and a test
(tests/common/test_fingerprint.py) fails when their source fingerprint no longer matches the one recorded there.
``latentgen training-code --record`` (or ``python -m latentgen.common.fingerprint --record``) records it
(``--bump`` also raises the version: every run is retrained).  docs/architecture.md, "Rerun triggers", has the rule.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

PACKAGE = "latentgen"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the package that jobs import: the code that really runs
TRAINING_STAGES = ("prepare_dataset", "corrupt_labels", "train")
RECORD_NAME = "training_code.json"
DIGITS = 12  # of a sha256: enough to tell versions apart, short enough to read in a dry run's reasons

# A reference to package code: (module, top-level name), or (module, None) for the whole module.
Reference = tuple[str, "str | None"]


# ----------------------------------------------------------------------------------------------------------
# What a definition's fingerprint sees
# ----------------------------------------------------------------------------------------------------------


def _is_bare_string(node: Any) -> bool:
    """A docstring, or any other string statement: it does nothing, so it cannot change results."""
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _is_empty(value: Any) -> bool:
    return value is None or value == []


def canonical(node: Any) -> str:
    """The syntax tree as text: no docstrings, positions or comments (ast has none).

    Written out here rather than with ``ast.dump``, whose output changes between Python versions (3.13
    leaves out empty fields): fields that are None or empty lists are always left out, so a Python upgrade
    changes a fingerprint only where the syntax tree itself changed.
    """
    if isinstance(node, ast.AST):
        fields = ",".join(f"{name}={canonical(value)}" for name, value in ast.iter_fields(node) if not _is_empty(value))
        return f"{type(node).__name__}({fields})"
    if isinstance(node, list):
        return "[" + ",".join(canonical(item) for item in node if not _is_bare_string(item)) + "]"
    return repr(node)


def digest(texts: Iterable[str]) -> str:
    sha = hashlib.sha256()
    for text in texts:
        sha.update(text.encode())
        sha.update(b"\0")
    return sha.hexdigest()[:DIGITS]


# ----------------------------------------------------------------------------------------------------------
# One parsed source file
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Source:
    """A module (or a workflow script) as top-level statements, with what each name stands for.

    An import of several names is split into one statement per name, so a stage that uses one of them
    depends on that one only.
    """

    name: str
    statements: list[ast.stmt]
    bindings: dict[str, list[int]] = field(default_factory=dict)  # top-level name -> statements binding it
    imports: dict[str, set[Reference]] = field(default_factory=dict)  # name -> the package code it stands for
    side_code: list[int] = field(default_factory=list)  # statements that run on import and bind nothing


def _module_file(module: str, package_dir: Path) -> Path | None:
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _absolute(node: ast.ImportFrom, importer: str) -> str:
    if not node.level:
        return node.module or ""
    parent = importer.split(".")[: -node.level]  # relative imports: the importer's package, or one above
    return ".".join([*parent, node.module] if node.module else parent)


def import_bindings(node: ast.Import | ast.ImportFrom, importer: str, package_dir: Path) -> dict[str, Reference]:
    """The package code an import statement binds, by the name it binds (other imports are left out)."""
    bound: dict[str, Reference] = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if _module_file(alias.name, package_dir):
                bound[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        return bound
    module = _absolute(node, importer)
    if not _module_file(module, package_dir):
        return bound
    for alias in node.names:
        submodule = f"{module}.{alias.name}"
        bound[alias.asname or alias.name] = (
            (submodule, None)
            if _module_file(submodule, package_dir)
            else (module, None if alias.name == "*" else alias.name)
        )
    return bound


def _one_statement_per_name(statement: ast.stmt) -> list[ast.stmt]:
    if isinstance(statement, ast.Import):
        return [ast.Import(names=[alias]) for alias in statement.names]
    if isinstance(statement, ast.ImportFrom):
        return [
            ast.ImportFrom(module=statement.module, names=[alias], level=statement.level) for alias in statement.names
        ]
    return [statement]


def _bound_names(statement: ast.stmt) -> list[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [alias.asname or alias.name.split(".")[0] for alias in statement.names]
    targets = {
        ast.Assign: lambda s: s.targets,
        ast.AnnAssign: lambda s: [s.target],
        ast.AugAssign: lambda s: [s.target],
    }.get(type(statement))
    if targets is None:
        return []
    return [node.id for target in targets(statement) for node in ast.walk(target) if isinstance(node, ast.Name)]


@lru_cache(maxsize=None)
def parse_source(text: str, name: str, package_dir: Path) -> Source:
    """Cached by the text itself: a file edited since it was last parsed is parsed again."""
    statements = [split for statement in ast.parse(text).body for split in _one_statement_per_name(statement)]
    source = Source(name, statements)
    for index, statement in enumerate(statements):
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            for bound, reference in import_bindings(statement, name, package_dir).items():
                source.imports.setdefault(bound, set()).add(reference)
        if names := _bound_names(statement):
            for bound in names:
                source.bindings.setdefault(bound, []).append(index)
        elif not _is_bare_string(statement):
            source.side_code.append(index)
    return source


def _is_top_level_import(statement: ast.stmt) -> bool:
    return isinstance(statement, (ast.Import, ast.ImportFrom))


def references(statement: ast.stmt, source: Source, package_dir: Path) -> set[Reference]:
    """The code one statement uses: top-level names of its own source (imports included), the package code
    those imports stand for (``datasets.prepare``: that function only) and the package code it imports
    locally (inside a function)."""
    found: set[Reference] = set()
    module_attributes = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            modules = source.imports.get(node.value.id, set())
            if len(modules) == 1 and next(iter(modules))[1] is None:
                found.add((next(iter(modules))[0], node.attr))
                module_attributes.add(id(node.value))
    for node in ast.walk(statement):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= set(import_bindings(node, source.name, package_dir).values())
        elif isinstance(node, ast.Name) and id(node) not in module_attributes:
            if node.id in source.bindings:
                found.add((source.name, node.id))
            found |= source.imports.get(node.id, set())
    return found


# ----------------------------------------------------------------------------------------------------------
# The code a script reaches
# ----------------------------------------------------------------------------------------------------------


class Reach:
    """Walks from scripts through everything they use, collecting the statements reached per source."""

    def __init__(self, package_dir: Path) -> None:
        self.package_dir = package_dir
        self.sources: dict[str, Source] = {}
        self.reached: dict[str, set[int]] = {}
        self.pending: list[tuple[str, int]] = []
        self.resolved: set[Reference] = set()  # each once: also ends a cycle of re-exports

    def add_script(self, path: Path, name: str) -> None:
        source = self.sources[name] = parse_source(path.read_text(), name, self.package_dir)
        self.reached.setdefault(name, set())
        for index in range(len(source.statements)):  # a script runs top to bottom: all of it counts
            self._reach(name, index)
        self._follow()

    def _reach(self, name: str, index: int) -> None:
        if index not in self.reached[name]:
            self.reached[name].add(index)
            self.pending.append((name, index))

    def _open(self, module: str) -> Source | None:
        """A package module the first time it is used: importing it also runs its (and its parents') side code."""
        if module not in self.sources:
            path = _module_file(module, self.package_dir)
            if path is None:
                return None
            self.sources[module] = parse_source(path.read_text(), module, self.package_dir)
            self.reached[module] = set()
            for index in self.sources[module].side_code:
                self._reach(module, index)
            if "." in module:
                self._open(module.rsplit(".", 1)[0])
        return self.sources[module]

    def _resolve(self, reference: Reference) -> None:
        if reference in self.resolved:
            return
        self.resolved.add(reference)
        module, name = reference
        source = self._open(module)
        if source is None:
            return
        if name is None:
            for index in range(len(source.statements)):
                self._reach(module, index)
        elif name in source.bindings:
            for index in source.bindings[name]:
                self._reach(module, index)
            for imported in source.imports.get(name, ()):  # a name it imports (or re-exports)
                self._resolve(imported)
        elif _module_file(f"{module}.{name}", self.package_dir):
            self._resolve((f"{module}.{name}", None))
        else:  # a name bound some way this walk does not follow: the whole module, to be safe
            self._resolve((module, None))

    def _follow(self) -> None:
        while self.pending:
            name, index = self.pending.pop()
            source = self.sources[name]
            statement = source.statements[index]
            if _is_top_level_import(statement):
                continue  # what an import stands for is followed where its name is used
            for reference in references(statement, source, self.package_dir):
                self._resolve(reference)

    def fingerprints(self) -> dict[str, str]:
        """source name -> fingerprint of the statements reached in it (in source order)."""
        return {
            name: digest(canonical(self.sources[name].statements[i]) for i in sorted(indices))
            for name, indices in sorted(self.reached.items())
        }


def script_path(workflow_dir: Path, stage: str) -> Path:
    return Path(workflow_dir) / "scripts" / f"{stage}.py"


def source_fingerprints(
    workflow_dir: Path | str, stages: Iterable[str], package_dir: Path = PACKAGE_DIR
) -> dict[str, str]:
    """Per source file (script or module), the fingerprint of the code that these stages run."""
    reach = Reach(Path(package_dir))
    for stage in stages:
        reach.add_script(script_path(Path(workflow_dir), stage), f"scripts/{stage}.py")
    return reach.fingerprints()


def definition_code(module: str, name: str, package_dir: Path = PACKAGE_DIR) -> str:
    """One digest of the code a package definition reaches, for what a stage writes inside its job and reuses
    later: the score stage keys kept activations by its extraction's code (``pipeline._extract_checkpoint``)."""
    reach = Reach(Path(package_dir))
    reach._resolve((module, name))
    reach._follow()
    return digest(f"{source}:{fingerprint}" for source, fingerprint in reach.fingerprints().items())


# ----------------------------------------------------------------------------------------------------------
# What a rule's jobs depend on, and the training record
# ----------------------------------------------------------------------------------------------------------


def read_record(workflow_dir: Path | str) -> dict[str, Any]:
    return json.loads((Path(workflow_dir) / RECORD_NAME).read_text())


def stage_code(stage: str, workflow_dir: Path | str, package_dir: Path = PACKAGE_DIR) -> dict[str, Any]:
    """The ``params: code=`` value of a stage's rule: it changes exactly when the stage's code does.

    The stage name comes first, so a dry run's "Params have changed" reason names the stage; the
    per-file fingerprints follow, so `make stale` can name the files that changed.
    """
    if stage in TRAINING_STAGES:
        return {"stage": stage, "training_code_version": read_record(workflow_dir)["training_code_version"]}
    return {"stage": stage, **source_fingerprints(workflow_dir, [stage], package_dir)}


def training_code_drift(workflow_dir: Path | str, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Source files of the training stages whose code differs from the record (empty: as recorded)."""
    recorded = read_record(workflow_dir)["source"]
    current = source_fingerprints(workflow_dir, TRAINING_STAGES, package_dir)
    return sorted(name for name in recorded.keys() | current.keys() if recorded.get(name) != current.get(name))


def record_training_code(workflow_dir: Path | str, bump: bool = False, package_dir: Path = PACKAGE_DIR) -> dict:
    path = Path(workflow_dir) / RECORD_NAME
    record = json.loads(path.read_text()) if path.exists() else {"training_code_version": 0}
    record = {
        "note": "Written by `latentgen training-code --record`; see docs/architecture.md, Rerun triggers.",
        "training_code_version": record["training_code_version"] + int(bump),
        "stages": list(TRAINING_STAGES),
        "source": source_fingerprints(workflow_dir, TRAINING_STAGES, package_dir),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = (
        f"Check the training code (the code of the stages {', '.join(TRAINING_STAGES)}) against its record in "
        f"workflow/{RECORD_NAME}, or record it. Training jobs depend on the record's training_code_version, not on "
        "the code itself: retraining costs GPU-days, so a change to that code is recorded by hand."
    )
    parser.epilog = (
        "Exit status of the check: 0 as recorded, 1 changed. After a change: --record if trained models stay the same "
        "(a refactoring, a new option off by default), --record --bump if they would differ (every run is retrained). "
        "docs/architecture.md, 'Rerun triggers', has the rule."
    )
    parser.add_argument("--record", action="store_true", help="record the current training code as reviewed")
    parser.add_argument(
        "--bump", action="store_true", help="with --record: also raise training_code_version, so every run is retrained"
    )
    parser.add_argument(
        "--workflow", type=Path, default=Path("workflow"), help="the workflow directory (default: workflow)"
    )
    return parser


def handle(args: argparse.Namespace, prog: str) -> int:
    if args.bump and not args.record:
        print(f"{prog}: error: --bump needs --record", file=sys.stderr)
        return 2
    if args.record:
        record = record_training_code(args.workflow, bump=args.bump)
        print(
            f"recorded the training code at version {record['training_code_version']} in {args.workflow / RECORD_NAME}"
        )
        return 0
    drift = training_code_drift(args.workflow)
    print("training code as recorded" if not drift else "training code changed in: " + ", ".join(drift))
    return 1 if drift else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m latentgen.common.fingerprint``: the same as ``latentgen training-code``."""
    prog = "python -m latentgen.common.fingerprint"
    return handle(add_arguments(argparse.ArgumentParser(prog=prog)).parse_args(argv), prog)


if __name__ == "__main__":
    sys.exit(main())
