"""The package's import graph: no cycles (function-level imports included) and layers that point one way.

Layers, lowest first (a module may import its own package and any lower layer, never a higher one or a
sibling of its own layer): foundations (errors, settings, cache, retention, lazy) < models, data < the stages
(evaluate, prune, distill) < study < laws < report. Command-line modules (``cli.py``, ``*_cli.py``) sit on
top: they may import anything, and nothing but another command-line module imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "taskdistill"
LAYERS = {"errors": 0, "settings": 0, "cache": 0, "retention": 0, "lazy": 0, "__init__": 0,
          "models": 1, "data": 1, "evaluate": 2, "prune": 2, "distill": 2, "study": 3, "laws": 4, "report": 5}


def modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every taskdistill module ``name`` imports anywhere in its body (a ``from a import b`` of a submodule
    counts as importing ``a.b``)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            subs = {f"{target}.{a.name}" for a in node.names} & known
            out |= subs or {target}
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, name, set(mods)) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
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

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def is_cli(module: str) -> bool:
    last = module.split(".")[-1]
    return module == f"{PACKAGE}.cli" or last == "cli" or last.endswith("_cli")


def layer(module: str) -> tuple[str, int]:
    top = module.split(".")[1] if "." in module else "__init__"
    return top, LAYERS[top]


def test_cycle_finder_finds_a_planted_loop():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_are_seen(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from taskdistill.study import store\n    import taskdistill.cache\n")
    assert imports(path, "taskdistill.x", {"taskdistill.study", "taskdistill.study.store", "taskdistill.cache"}) == {
        "taskdistill.study.store", "taskdistill.cache"}


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, f"import cycles: {found}"


def test_every_package_has_a_layer():
    unknown = {layer_name for m in modules() if (layer_name := (m.split(".")[1] if "." in m else "__init__"))
               not in LAYERS and not is_cli(m)}
    assert not unknown, f"give these packages a layer in tests/test_layers.py: {unknown}"


def test_layers_point_one_way():
    bad = []
    for module, deps in graph().items():
        for dep in deps:
            if is_cli(dep) and not is_cli(module):
                bad.append(f"{module} imports the command-line module {dep}")
                continue
            if is_cli(module):
                continue
            (own, mine), (other, theirs) = layer(module), layer(dep)
            if theirs > mine or (theirs == mine and own != other and mine > 0):
                bad.append(f"{module} ({own}) imports {dep} ({other})")
    assert not bad, "layer violations:\n" + "\n".join(sorted(bad))


def test_every_stage_has_a_small_public_face():
    import importlib

    faces = {"data": "load_task_data", "models": "load_model", "evaluate": "evaluate_task", "prune": "prune",
             "distill": "distill", "study": "run_study", "laws": "fit_study", "report": "build_report"}
    for package, name in faces.items():
        module = importlib.import_module(f"{PACKAGE}.{package}")
        assert callable(getattr(module, name)), package
        for exported in module.__all__:  # every advertised name resolves
            assert getattr(module, exported) is not None, f"{package}.{exported}"
