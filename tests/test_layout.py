"""The package reads as the lab: every module is on its part's map, and parts depend one way only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "whisper_lab"


def _map_entries(init: Path) -> list[str]:
    """The names listed in a package docstring's map: lines like '    name   what it does'."""
    doc = ast.get_docstring(ast.parse(init.read_text()), clean=False) or ""
    return re.findall(r"^ {4}([a-z_0-9]+)/?\s{2,}", doc, flags=re.M)


def _parts_in_order() -> list[str]:
    return [name for name in _map_entries(PACKAGE / "__init__.py") if (PACKAGE / name).is_dir()]


def _part_of(module: Path) -> str | None:
    """'export' for whisper_lab/export/pipeline.py; None for a shared helper at the top."""
    relative = module.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else None


def _imported_modules(module: Path) -> set[Path]:
    """Files of whisper_lab that `module` imports, relative or absolute, at any depth in the file."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:  # from ..export.onnx_export import x  /  from . import x
            base = module.parent
            for _ in range(node.level - 1):
                base = base.parent
        elif (node.module or "").startswith("whisper_lab"):
            base, node_module = PACKAGE.parent, node.module
        else:
            continue
        dotted = node.module if node.level else node_module
        target = base.joinpath(*(dotted or "").split(".")) if dotted else base
        candidates = [target.with_suffix(".py")] if dotted else []
        candidates += [target / f"{alias.name}.py" for alias in node.names]
        candidates += [target / "__init__.py"]
        found |= {c for c in candidates if c.is_file()}
    return found


def test_every_module_is_on_exactly_one_map():
    modules = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
    listed: dict[Path, int] = {}
    for init in PACKAGE.rglob("__init__.py"):
        for name in _map_entries(init):
            for candidate in (init.parent / f"{name}.py", init.parent / name / "__init__.py"):
                if candidate.is_file():
                    listed[candidate] = listed.get(candidate, 0) + 1
    missing = [str(m.relative_to(PACKAGE)) for m in modules if listed.get(m, 0) == 0]
    twice = [str(m.relative_to(PACKAGE)) for m, n in listed.items() if n > 1]
    assert not missing, f"not named in their package's map: {missing}"
    assert not twice, f"named in more than one map: {twice}"
    parts = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert set(_parts_in_order()) == parts, "the top-level map must list every sub-package"


def test_few_shared_helpers_at_the_top():
    top = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 6, top


def test_parts_only_use_parts_listed_before_them():
    order = {part: i for i, part in enumerate(_parts_in_order())}
    wrong = []
    for module in PACKAGE.rglob("*.py"):
        part = _part_of(module)
        for target in _imported_modules(module):
            target_part = _part_of(target)
            if target_part is None or target_part == part:
                continue  # shared helpers are for everyone; a part may use its own modules
            if part is None:
                wrong.append(f"shared helper {module.name} imports {target.relative_to(PACKAGE)}")
            elif order[target_part] > order[part]:
                wrong.append(f"{module.relative_to(PACKAGE)} ({part}) imports {target.relative_to(PACKAGE)}")
    assert not wrong, "imports against the order of the map:\n" + "\n".join(wrong)


def _import_cycle() -> list[str] | None:
    """A chain of modules that import each other round in a circle, counting imports inside functions
    (they only hide a circle until the day someone moves them to the top); None if there is none."""
    graph = {m: {t for t in _imported_modules(m) if t.name != "__init__.py" and t != m}
             for m in PACKAGE.rglob("*.py") if m.name != "__init__.py"}  # fmt: skip
    state: dict[Path, int] = {}  # 1: on the current path, 2: done
    path: list[Path] = []

    def visit(module: Path) -> list[Path] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return [str(m.relative_to(PACKAGE)) for m in cycle]
    return None


def test_no_module_imports_itself_round_a_circle():
    cycle = _import_cycle()
    assert cycle is None, "modules import each other in a circle: " + " -> ".join(cycle)
