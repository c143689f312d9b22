"""The shape of the code (docs/architecture.md): no import cycle among the project's modules, counting imports inside
functions and under TYPE_CHECKING, and no function longer than about 80 lines unless a comment above it says why."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "attacks", "models_zoo", "perf")
MAX_LINES = 80
ON_PURPOSE = "on purpose"  # what the comment above a longer function says (with why)


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    parts = name.split(".")
    while parts:
        if ".".join(parts) in mods:
            return ".".join(parts)
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere (a package's own `__init__`, imported implicitly with any of
    its submodules, is not an edge; `from pkg import sub` is an edge to `pkg.sub` when that is a module)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for target in targets:
                found = _resolve(target, mods)
                if found is not None and found != mod:
                    edges[mod].add(found)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _comment_above(lines: list[str], node: ast.AST) -> str:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    above = []
    i = first - 2
    while i >= 0 and lines[i].lstrip().startswith("#"):
        above.append(lines[i])
        i -= 1
    return " ".join(above)


def long_functions() -> list[str]:
    out = []
    for mod, path in _modules().items():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES and ON_PURPOSE not in _comment_above(lines, node):
                    out.append(f"{mod}.{node.name} ({n} lines)")
    return out


def test_no_long_functions_without_a_reason():
    assert not long_functions(), "functions over 80 lines with no comment saying why: " + ", ".join(long_functions())


def layers() -> list[tuple[str, list[str]]]:
    """The layers of docs/architecture.md, bottom first: (name, module prefixes)."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("<!-- layers: top to bottom -->")[1].split("<!-- /layers -->")[0]
    rows = [line.split("|")[1:3] for line in table.strip().splitlines()[2:]]
    return [(name.strip(), re.findall(r"`([\w.]+)`", mods)) for name, mods in reversed(rows)]


def test_every_import_goes_down_the_layers_of_the_docs():
    order = layers()
    assert [name for name, _ in order][:2] == ["vocabulary", "data"] and len(order) > 10

    def rank(module: str) -> int:
        found = [(len(p), i) for i, (_, prefixes) in enumerate(order) for p in prefixes
                 if module == p or module.startswith(p + ".")]
        assert found, f"{module} is in no layer of docs/architecture.md"
        return max(found)[1]

    upward = [f"{a} ({order[rank(a)][0]}) -> {b} ({order[rank(b)][0]})"
              for a, bs in import_graph().items() for b in bs if rank(b) > rank(a)]
    assert not upward, "imports that go up the layers: " + "; ".join(upward)
