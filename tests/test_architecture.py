"""The package's shape (docs/architecture.md): no import circle, every import going down the layers, modeling/ free
of anything but torch and transformers, and a command line that answers --help without loading torch.

The import graph is read from the source with `ast`, imports inside functions included: a function-level import
that closes a circle is still a circle in the design (it only moves the failure from import time to call time),
and the lazy imports that keep the CLI fast all point down the layers, so counting them costs nothing.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpt2_scratch"

# Each part of the package and its layer: a part may import its own modules and the parts of lower layers only.
# Keep in step with the table in docs/architecture.md.
LAYERS = {
    "progress": 0,
    "staging": 0,
    "resources": 1,
    "provenance": 1,
    "kernels": 1,
    "modeling": 1,  # and, as Hub remote code, nothing of the package at all (see below)
    "tokenization": 2,
    "generation": 2,
    "precision": 2,
    "lora": 2,
    "data": 3,
    "conversion": 4,
    "speed": 5,
    "hub_cards": 5,
    "training": 6,
    "evaluation": 7,
    "classification": 8,
    "instruct": 8,
    "serving": 9,
    "cli": 10,
    "__init__": 11,  # gpt2_scratch itself: the front door
}
# What modeling/ may import besides the standard library: it ships as a checkpoint's remote code.
MODELING_THIRD_PARTY = {"torch", "transformers"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every module `name` imports, anywhere in the file: package modules by their full name, others as written."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]) if node.level else node.module
            base = base.rstrip(".")
            # `from package import module` imports the module; `from module import name` the module itself.
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    return found


GRAPH = {name: {dep for dep in imports_of(name) if dep in MODULES and dep != name} for name in MODULES}


def part(name: str) -> str:
    """The part of the package a module belongs to: its subpackage or top-level module ("__init__": the package)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_circles_and_reads_relative_imports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert "gpt2_scratch.conversion.engine" in GRAPH["gpt2_scratch.conversion.api"]  # from .engine import (...)
    assert "gpt2_scratch.modeling" in GRAPH["gpt2_scratch.conversion.hparams"]  # from ..modeling import ...


def test_there_is_no_import_circle():
    assert cycles(GRAPH) == []


def test_every_part_has_a_layer():
    assert {part(name) for name in MODULES} - set(LAYERS) == set(), "add the new part to LAYERS and the docs"


def test_imports_go_down_the_layers():
    upward = [
        f"{name} -> {dep}"
        for name, deps in GRAPH.items()
        for dep in deps
        if part(dep) != part(name) and LAYERS[part(dep)] >= LAYERS[part(name)]
    ]
    assert upward == []


def test_modeling_imports_only_torch_transformers_and_itself():
    """The modeling files are copied beside every checkpoint as remote code, where gpt2_scratch is not installed."""
    foreign = [
        f"{name} -> {dep}"
        for name in MODULES
        if part(name) == "modeling"
        for dep in imports_of(name)
        if not (dep.startswith("gpt2_scratch.modeling") or dep.split(".")[0] in MODELING_THIRD_PARTY)
        and dep.split(".")[0] not in sys.stdlib_module_names
    ]
    assert foreign == []


def imported_by(command: list[str]) -> set[str]:
    """The top-level packages a Python command imports, from `python -X importtime` (which names every module)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: gpt2-scratch" in done.stdout
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}


CONSOLE_SCRIPT = "import runpy, sys; sys.argv = ['gpt2-scratch', '--help']; runpy.run_module('gpt2_scratch.cli', run_name='__main__')"


@pytest.mark.parametrize("command", [["-m", "gpt2_scratch.cli", "--help"], ["-c", CONSOLE_SCRIPT]], ids=["-m", "script"])
def test_help_does_not_import_torch_or_transformers(command):
    """`gpt2-scratch --help` answers at once: it loads neither torch nor transformers (6 s on 2 cores before)."""
    modules = imported_by(command)
    assert "gpt2_scratch" in modules and not modules & {"torch", "transformers"}


def test_importing_the_package_registers_the_model_with_the_auto_classes():
    check = (
        "import gpt2_scratch\n"
        "from transformers import AutoConfig\n"
        "print(type(AutoConfig.for_model('scratch-gpt2')).__name__)"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ScratchGPT2Config", done.stderr
