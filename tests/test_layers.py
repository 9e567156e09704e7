"""gwnlib's architecture, checked: its sub-packages form layers whose imports only point down.

    runtime, files  ->  theory, data, download  ->  model  ->  vision  ->  experiments
                    ->  training  ->  analysis  ->  the command line and the package itself

Every import in every module counts, those inside functions too: an import that a function
defers to run time is still a dependency. The test fails on an import of a higher layer, on an
import cycle between modules, and on an import of another module's underscore name.
"""

import ast
import functools
import json
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gwnlib"

#: The layers, bottom up: a module may import its own layer and the layers below.
LAYERS = (
    ("runtime", "files"),
    ("theory", "data", "download"),
    ("model",),
    ("vision",),
    ("experiments",),
    ("training",),
    ("analysis",),
    ("__main__", ""),  # the command line and the package's __init__
)
RANK = {top: rank for rank, tops in enumerate(LAYERS) for top in tops}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def rank(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    if top not in RANK:
        raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")
    return RANK[top]


@functools.cache
def syntax_tree(path: Path) -> ast.Module:
    """The parsed source of the file at ``path``: read and parsed once, shared by every check."""
    return ast.parse(path.read_text(encoding="utf-8"))


def imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every gwnlib import in ``module``."""
    found = []
    for node in ast.walk(syntax_tree(MODULES[module])):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.startswith("gwnlib")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("gwnlib"):
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in MODULES:  # from gwnlib.model import codecs
                    found.append((submodule, "", node.lineno))
                else:
                    found.append((node.module, alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{module}:{node.lineno}: a relative import; write it in full")
    return found


def test_every_module_belongs_to_a_layer():
    assert MODULES and all(rank(module) >= 0 for module in MODULES)


def test_imports_only_point_down():
    upward = []
    for module in MODULES:
        for target, name, line in imports(module):
            if target == "gwnlib" and name == "__version__":
                continue  # the version string: a constant of the package itself
            if target in MODULES and rank(target) > rank(module):
                upward.append(f"{module}:{line} imports {target} ({LAYERS[rank(target)]})")
    assert upward == [], "\n".join(upward)


def test_no_import_cycles():
    graph = {module: {t for t, _, _ in imports(module) if t in MODULES and t != module}
             for module in MODULES}  # fmt: skip
    # A package imports its own modules to re-export them; they never need the package back.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == [], "\n".join(cycles)


def test_no_module_imports_another_modules_private_names():
    private = [
        f"{module}:{line} imports {target}.{name}"
        for module in MODULES
        for target, name, line in imports(module)
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert private == [], "\n".join(private)


@pytest.mark.parametrize(
    "sources, check, problem",
    [
        ({"fake": "from gwnlib.training.train import fit\n"}, "down", "imports gwnlib.training"),
        ({"fake": "def f():\n    from gwnlib.analysis import paper\n"}, "down", "analysis.paper"),
        (
            {"fake": "import gwnlib.model.other\n", "other": "from gwnlib.model import fake\n"},
            "cycles",
            "gwnlib.model.fake -> gwnlib.model.other -> gwnlib.model.fake",
        ),
        ({"fake": "from gwnlib.model.codecs import _wiring\n"}, "private", "codecs._wiring"),
    ],
)
def test_the_checks_can_fail(tmp_path, monkeypatch, sources, check, problem):
    """Model modules that import training or analysis (even inside a function), import each
    other in a circle, or take another module's private name are each refused."""
    for name, source in sources.items():
        fake = tmp_path / f"{name}.py"
        fake.write_text(source)
        monkeypatch.setitem(MODULES, f"gwnlib.model.{name}", fake)
    checks = {"down": test_imports_only_point_down, "cycles": test_no_import_cycles,
              "private": test_no_module_imports_another_modules_private_names}  # fmt: skip
    with pytest.raises(AssertionError, match=problem):
        checks[check]()


def test_every_sub_package_names_its_chapters_by_title():
    """The package promises that each sub-package's docstring names a chapter that explains it,
    by its title (numbers change when chapters move)."""
    book = PACKAGE.parent / "book"
    titles = set()
    for path in book.glob("*.ipynb"):
        first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"][0]
        titles.add(first.removeprefix("# ").strip())
    silent = []
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        text = " ".join((ast.get_docstring(syntax_tree(init)) or "").split())
        if not any(title in text for title in titles):
            silent.append(init.parent.name)
    assert len(titles) >= 8 and silent == [], f"no chapter title in the docstring of {silent}"


def test_the_extending_page_runs(capsys):
    """book/extending.md: its new codec builds, trains' forward runs, codes to bytes and decodes
    partially; its dataset sketch registers; its task model is frozen and passes gradients to the
    images. The registries are restored afterwards."""
    import re

    from gwnlib.experiments.base import EXPERIMENTS
    from gwnlib.model.codecs import CODECS, WIRINGS

    page = (PACKAGE.parent / "book" / "extending.md").read_text(encoding="utf-8")
    codec_code, dataset_code, task_code = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    wirings, experiments = dict(WIRINGS), dict(EXPERIMENTS)
    try:
        exec(compile(codec_code, "extending.md", "exec"), {})
        assert "R_t = " in capsys.readouterr().out
        assert list(WIRINGS)[: len(CODECS)] == list(CODECS)  # the paper's ids unchanged
        exec(compile(dataset_code, "extending.md", "exec"), {})
        assert EXPERIMENTS["mine"].__name__ == "MyExperiment"
        exec(compile(task_code, "extending.md", "exec"), {})
        assert "frozen receiver, gradient to the decoded images: " in capsys.readouterr().out
    finally:
        WIRINGS.clear()
        WIRINGS.update(wirings)
        EXPERIMENTS.clear()
        EXPERIMENTS.update(experiments)
