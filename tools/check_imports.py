"""Import cycles among a package's modules, counting imports inside functions.

Every ``import`` and ``from ... import`` in a module counts, wherever it stands (a function
body too), except those under ``if TYPE_CHECKING:``, which never run. An import of a name
that is a submodule points at that submodule; any other name points at the module that
defines it. A package's ``__init__`` re-exporting its own children is not a cycle as long as
no child imports the package back.

    python tools/check_imports.py hpo     # exit 1 and one line per cycle, else 0 and a count
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package at ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                skip.update(id(sub) for sub in ast.walk(statement))
    return skip


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` (file ``path``) imports."""
    package = name.split(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_nodes(tree)
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = here[: len(here) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
    out = set()
    for target in targets:
        if target.split(".")[0] != package:
            continue
        while target and target not in known:  # a name inside a module: that module
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _only_reexports(component: list[str], graph: dict[str, set[str]]) -> bool:
    """A package ``__init__`` importing its children, none of which imports it back."""
    heads = {m for m in component if any(o.startswith(m + ".") for o in component)}
    if len(heads) != 1:
        return False
    head = heads.pop()
    children = [m for m in component if m != head]
    return all(m.startswith(head + ".") for m in children) and not any(
        head in graph[m] for m in children
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/check_imports.py PACKAGE_DIR", file=sys.stderr)
        return 2
    root = Path(argv[0]).resolve()
    known = modules(root)
    graph = {name: imports(name, path, known) for name, path in known.items()}
    real = [c for c in cycles(graph) if not _only_reexports(c, graph)]
    for component in real:
        print("import cycle: " + " <-> ".join(component))
    if real:
        print(f"{len(real)} import cycle(s) among {root.name}'s modules")
        return 1
    print(f"no import cycle among {len(known)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
