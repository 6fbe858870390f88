"""Measure facebench's shape: package cycles, upward imports, long files and long functions.

Reads the source (grimp for the import graph, imports inside functions included; ast for
sizes), runs nothing. The layers are the ones docs/development.md states and
``.importlinter`` enforces; an import against them is "upward".

    python benchmarks/architecture.py            # summary
    python benchmarks/architecture.py --verbose  # every cycle, upward import, long file and function
    git worktree add /tmp/before 9e248a5 && python benchmarks/architecture.py --root /tmp/before
                                                 # another checkout, against this checkout's layers
"""

from __future__ import annotations

import argparse
import ast
import configparser
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "facebench"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: facebench.eval.verify -> eval."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def layers(path: Path) -> list[list[tuple[str, bool]]]:
    """The layers contract of an .importlinter file, top first: each layer's (name, independent) siblings.

    ``a | b``: independent siblings (may not import each other); ``a : b``: siblings that may.
    """
    config = configparser.ConfigParser(inline_comment_prefixes=(";",))
    config.read(path)
    section = next(s for s in config.sections() if config.get(s, "type", fallback="") == "layers")
    lines = [line.strip() for line in config.get(section, "layers").splitlines() if line.strip()]
    return [[(name.strip(), "|" in line) for name in line.replace(":", "|").split("|")] for line in lines]


def import_edges(graph: grimp.ImportGraph) -> list[tuple[str, str, int, str]]:
    """(importer, imported, line, text) for every import between facebench modules."""
    edges = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                edges.append((importer, imported, detail["line_number"], detail["line_contents"]))
    return edges


def package_cycles(edges: list[tuple[str, str, int, str]]) -> list[tuple[str, str]]:
    """Pairs of packages that import each other (directly, in either direction)."""
    pairs = {(unit(a), unit(b)) for a, b, _, _ in edges if unit(a) != unit(b)}
    return sorted((a, b) for a, b in pairs if a < b and (b, a) in pairs)


def upward_imports(edges: list[tuple[str, str, int, str]], stack: list[list[tuple[str, bool]]]) -> list[str]:
    """Imports from a lower layer into a higher one, or between independent siblings of one layer."""
    place = {name: (level, independent) for level, names in enumerate(stack) for name, independent in names}

    def owner(module: str) -> str | None:
        local = module.removeprefix(PACKAGE + ".")
        return next((name for name in place if local == name or local.startswith(name + ".")), None)

    found = []
    for importer, imported, line, text in edges:
        a, b = owner(importer), owner(imported)
        if a is None or b is None or a == b:
            continue
        (level_a, independent), (level_b, _) = place[a], place[b]
        if level_b < level_a or (level_b == level_a and independent):
            found.append(f"{importer}:{line} -> {imported}  ({text})")
    return found


def long_files(root: Path) -> list[tuple[str, int]]:
    """Source files over MAX_FILE_LINES lines."""
    files = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES:
            files.append((path.relative_to(root).as_posix(), lines))
    return files


def long_functions(root: Path) -> list[tuple[str, int]]:
    """Functions and methods over MAX_FUNCTION_LINES lines (docstring included)."""
    found = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append((f"{path.relative_to(root).as_posix()}:{node.lineno} {node.name}", lines))
    return found


def indented_imports(root: Path) -> int:
    """Internal imports written indented: inside a function or a guard, where a file's header does not show them."""
    count = 0
    for path in (root / PACKAGE).rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.lstrip()
            if line != stripped and stripped.startswith(("from facebench", "import facebench")):
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    parser.add_argument("--layers", type=Path, default=ROOT / ".importlinter", help="file with the layers contract")
    parser.add_argument("--verbose", action="store_true", help="list every finding, not just the counts")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root))  # grimp finds the package to read on sys.path
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    edges = import_edges(graph)
    cycles = package_cycles(edges)
    upward = upward_imports(edges, layers(args.layers))
    files, functions = long_files(args.root), long_functions(args.root)
    print(f"checkout: {args.root}; layers: {args.layers}")
    print(f"internal imports: {len(edges)} ({indented_imports(args.root)} written inside a function or guard)")
    print(f"package cycles (pairs of packages importing each other): {len(cycles)}")
    print(f"upward imports against the layers: {len(upward)}")
    print(f"files over {MAX_FILE_LINES} lines: {len(files)}")
    print(f"functions over {MAX_FUNCTION_LINES} lines: {len(functions)}")
    if args.verbose:
        findings = {
            "package cycles": [f"{a} <-> {b}" for a, b in cycles],
            "upward imports": upward,
            "long files": [f"{name} ({n} lines)" for name, n in files],
            "long functions": [f"{name} ({n} lines)" for name, n in functions],
        }
        for title, items in findings.items():
            print(f"\n{title}:")
            for item in items:
                print(f"  {item}")


if __name__ == "__main__":
    main()
