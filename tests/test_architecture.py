"""The house rules that a reader cannot see: import boundaries and the public API."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import plait

CORE = [
    "plait",
    "plait.types",
    "plait.errors",
    "plait.registry",
    "plait.config",
    "plait.build",
    "plait.modalities",
    "plait.fusion",
    "plait.models.fusion_model",
    "plait.models.inference",
    "plait.models.calibration",
    "plait.task",
    "plait.metrics",
    "plait.data.dataset",
    "plait.data.table",
    "plait.data.split",
    "plait.data.split_plan",
    "plait.data.folds",
    "plait.data.leaks",
    "plait.data.infer",
    "plait.config_yaml",
    "plait.config_records",
    "plait.config_split",
    "plait.evaluation.evaluate",
    "plait.evaluation.balance",
    "plait.evaluation.calibration",
    "plait.evaluation.full",
    "plait.evaluation.interpret",
    "plait.evaluation.robustness",
    "plait.evaluation.rows",
    "plait.workflow.evaluate",
    "plait.evaluation.summary",
    "plait.evaluation.sweep",
    "plait.json_safe",
    "plait.report",
    "plait.objectives.balance",
    "plait.models.fusion_hooks",
    "plait.compare",
    "plait.provenance.record",
    "plait.bundle",
    "plait.predictor",
    "plait.demo",
    "plait.datasets.pumps",
    "plait.datasets.avdigits",
    "plait.pretrained.kinds",
    "plait.pretrained.tuned_text",
    "plait.pretrained.embed",
    "plait.retrieval.search",
    "plait.retrieval.embed_file",
]
FORBIDDEN = ("lightning", "pytorch_lightning", "fastapi", "typer")


def test_core_imports_no_lightning_fastapi_or_typer():
    code = (
        "import importlib, sys\n"
        f"for m in {CORE!r}: importlib.import_module(m)\n"
        "import plait; plait.Predictor\n"
        f"print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"


def test_public_api_is_pinned():
    assert plait.__all__ == [
        "Absent",
        "Batch",
        "BundleError",
        "Config",
        "ConfigError",
        "DataError",
        "EncoderOutput",
        "FusionOutput",
        "ModelNotFoundError",
        "ModelOutput",
        "PlaitError",
        "Prediction",
        "Predictor",
        "TrainedModel",
        "UnknownNameError",
        "__version__",
        "load_bundle",
        "load_config",
        "save_bundle",
    ]
    for name in plait.__all__:
        assert getattr(plait, name) is not None


def test_cli_help_does_not_import_torch():
    code = "import sys; import plait.cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the direction imports flow (DESIGN.md, Layout) ------------------------------------------------
#
# A "package" is plait's first level: plait.training, plait.evaluation, … and each top-level module
# (plait.bundle, plait.task, …). Every import counts: module level, inside functions, and under
# TYPE_CHECKING. `plait` itself (the lazy public facade) is left out: importing it imports nothing.

SRC = Path(plait.__file__).parent
ABOVE_CORE = (
    "plait.training",
    "plait.evaluation",
    "plait.workflow",
    "plait.compare",
    "plait.serving",
    "plait.cli",
)
CORE_PACKAGES = (  # the core, and what training and evaluation stand on (bundle, build, …)
    "plait.types",
    "plait.errors",
    "plait.registry",
    "plait.json_safe",
    "plait.config",
    "plait.config_records",
    "plait.config_split",
    "plait.config_yaml",
    "plait.task",
    "plait.metrics",
    "plait.modalities",
    "plait.fusion",
    "plait.models",
    "plait.data",
    "plait.align",
    "plait.objectives",
    "plait.build",
    "plait.bundle",
    "plait.bundle_checks",
    "plait.bundle_io",
    "plait.provenance",
    "plait.pretrained",
    "plait.retrieval",
)
MUST_NOT_IMPORT = {
    "plait.training": ("plait.evaluation", "plait.workflow", "plait.compare", "plait.serving", "plait.cli"),
    "plait.evaluation": (
        "plait.training",
        "plait.report",
        "plait.workflow",
        "plait.compare",
        "plait.serving",
        "plait.cli",
    ),
    # the report page reads evaluation's records; the workflows write it
    "plait.report": ("plait.training", "plait.workflow", "plait.compare", "plait.serving", "plait.cli"),
    **{core: ABOVE_CORE for core in CORE_PACKAGES},
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module under src/plait: dotted name → (file, is a package's __init__)."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The plait modules one import statement names (`from a import b` is a.b when that is a module)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: resolved against the importing module's package
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    return [n for n in names if n.startswith("plait.")]


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _package_imports() -> dict[tuple[str, str], list[str]]:
    """(package, package it imports) → the import lines, "file:line  statement"."""
    modules = _modules()
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in dict.fromkeys(_imported(node, module, is_package, set(modules))):  # each once
                edge = (_package(module), _package(target))
                if edge[0] != edge[1]:
                    where = f"{path.relative_to(SRC.parent.parent)}:{node.lineno}"
                    edges[edge].append(f"{where}  {ast.unparse(node)}")
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_finds_imports_of_every_form():
    edges = _package_imports()
    assert ("plait.workflow", "plait.training") in edges  # module level
    assert ("plait.cli", "plait.workflow") in edges  # inside a function
    assert ("plait.compare", "plait.training") in edges  # under TYPE_CHECKING and inside functions


def test_packages_import_each_other_without_cycles():
    edges = _package_imports()
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    problems = []
    for component in _cycles(graph):
        lines = [
            f"  {a} -> {b}: {line}"
            for (a, b), found in sorted(edges.items())
            if a in component and b in component
            for line in found
        ]
        problems.append(f"cycle between {', '.join(sorted(component))}:\n" + "\n".join(lines))
    assert not problems, "\n".join(problems)


def test_imports_point_one_way():
    """training only trains and evaluation only evaluates: neither imports the other (plait.workflow
    joins them); the core imports nothing built on it."""
    bad = [
        f"{a} must not import {b}: {line}"
        for (a, b), lines in sorted(_package_imports().items())
        if b in MUST_NOT_IMPORT.get(a, ())
        for line in lines
    ]
    assert not bad, "\n".join(bad)


def test_naming_a_task_type_does_not_import_torch():
    code = "import sys; import plait.task; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
