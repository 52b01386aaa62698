"""The shape the project promises: no import cycles, no dispatch by name."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dbinit", "accounts", "tenants", "aisecretary")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Every project module and the project modules it imports, at the top or inside functions."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base_pkg = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{base_pkg}.{base}" if base else base_pkg
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def test_no_module_imports_a_module_that_imports_it_back():
    graph = _imports()
    cycles = []

    def visit(node, stack):
        for nxt in graph[node]:
            if nxt in stack:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, stack + [nxt])

    for start in graph:
        seen = {start}
        visit(start, [start])
    # A package's __init__ importing its own submodules is not a cycle of concern.
    cycles = [c for c in cycles if not any(part.count(".") == 0 and part in PACKAGES for part in c.split(" -> "))]
    assert sorted(set(cycles)) == []


def test_domain_apps_and_their_migrations_never_import_dbinit():
    graph = _imports()
    upward = [f"{m} -> {t}" for m, targets in graph.items() if m.startswith(("accounts", "tenants"))
              for t in targets if t.startswith("dbinit")]
    assert upward == []


def test_no_dispatch_by_name():
    """Steps and repairs are called, never looked up by a computed name (``getattr(self, f"step_{name}")``)."""
    offenders = []
    for path in (ROOT / "dbinit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) >= 2:
                on_self = isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls")
                if on_self and not isinstance(node.args[1], ast.Constant):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
