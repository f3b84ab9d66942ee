"""The house rules, checked on the source: which package may import which, and a docstring on every package.

Dependencies flow one way (api -> pipelines -> detector, quality_gate; api, pipelines -> infra), the pure
libraries import no web, queue or database code, and inside `pipelines` each room imports only what its
docstring allows. A new import that breaks a rule fails here, with the file and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

PACKAGES = ("api", "pipelines", "detector", "quality_gate", "infra")

# project packages (or pipelines rooms) each one may import; absent means "only itself"
ALLOWED: dict[str, set[str]] = {
    "api": {"api", "pipelines", "detector", "quality_gate", "infra"},
    "pipelines.cases": {
        "pipelines.cases",
        "pipelines.resources",
        "pipelines.errors",
        "detector",
        "quality_gate",
        "infra",
    },
    # pipelines.cases.photos: the one home for reading stored photos (in sRGB), for review's detector passes and
    # for training images
    "pipelines.review": {
        "pipelines.review",
        "pipelines.cases.routing",
        "pipelines.cases.photos",
        "pipelines.errors",
        "detector",
        "infra",
    },
    "pipelines.mlops": {
        "pipelines.mlops",
        "pipelines.tasks.app",
        "pipelines.cases.photos",
        "pipelines.errors",
        "detector",
        "infra",
    },
    "pipelines.tasks": {"pipelines", "detector", "quality_gate", "infra"},
    "pipelines.resources": {"pipelines.cases.inference_pool", "pipelines.mlops", "infra"},
    "pipelines.errors": set(),
    "pipelines": set(),  # the package itself: a docstring only
    "detector": {"detector", "quality_gate"},
    "quality_gate": {"quality_gate"},
    "infra": {"infra"},
}
# third-party modules the pure libraries must never need
FORBIDDEN_IN_PURE = ("fastapi", "starlette", "celery", "kombu", "sqlalchemy", "alembic", "redis", "mlflow", "psycopg")


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def rule_for(module: str) -> str:
    """The most specific key of ALLOWED that this module falls under."""
    keys = [k for k in ALLOWED if module == k or module.startswith(k + ".")]
    return max(keys, key=len)


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def allowed(target: str, rule: str) -> bool:
    return any(target == a or target.startswith(a + ".") for a in ALLOWED[rule] | {rule})


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_follow_the_layers(module: str, path: Path) -> None:
    rule = rule_for(module)
    broken = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {target} ({rule} may import {sorted(ALLOWED[rule])})"
        for line, target in imports(path)
        if target.split(".")[0] in PACKAGES and target != rule.split(".")[0] and not allowed(target, rule)
        # `from pipelines import x` resolves to the room x: judged as pipelines.x
    ]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("module", "path"),
    [(m, p) for m, p in modules() if rule_for(m) in ("detector", "quality_gate")],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_pure_libraries_need_no_web_queue_or_database(module: str, path: Path) -> None:
    used = [(line, t) for line, t in imports(path) if t.split(".")[0] in FORBIDDEN_IN_PURE]
    assert not used, f"{path.relative_to(REPO_ROOT)} imports {used}"


def test_every_package_opens_with_a_docstring_saying_what_it_holds() -> None:
    missing = [
        str(init.relative_to(REPO_ROOT))
        for package in PACKAGES
        for init in sorted((REPO_ROOT / package).rglob("__init__.py"))
        if "migrations" not in init.parts and len(ast.get_docstring(ast.parse(init.read_text())) or "") < 40
    ]
    assert not missing, f"packages without a docstring saying what they hold: {missing}"


def test_the_rule_table_catches_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself: a detector module importing the database layer is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from infra.db.models import Case\nimport numpy\n")
    assert [t for _, t in imports(bad) if not allowed(t, "detector") and t.split(".")[0] in PACKAGES] == [
        "infra.db.models.Case"
    ]
