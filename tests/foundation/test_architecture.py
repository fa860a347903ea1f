"""The import boundaries stay: the contracts of .importlinter (lint-imports) and dags/ and plugins/ on orchestration only."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    """dags → orchestration → domain; Airflow only in dag_support (see .importlinter)."""
    exe = Path(sys.executable).with_name("lint-imports")
    lint = str(exe) if exe.exists() else shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports not installed: pip install -r requirements.lock (import-linter)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([lint, "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _banet_imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return [n for n in names if n.split(".")[0] == "banet_ops"]


# airflow_local_settings.py is Airflow's settings hook, not a plugin: it only preloads modules by name.
PLUGINS = [p for p in (REPO / "plugins").glob("*.py") if p.name != "airflow_local_settings.py"]


@pytest.mark.parametrize("path", sorted([*(REPO / "dags").glob("*.py"), *PLUGINS]), ids=lambda p: p.name)
def test_dags_and_plugins_call_only_orchestration(path: Path) -> None:
    """DAG files call banet_ops.orchestration only; plugins also mount the map (banet_ops.web)."""
    allowed = ("banet_ops.orchestration",) if path.parent.name == "dags" else ("banet_ops.orchestration", "banet_ops.web")
    imports = _banet_imports(path)
    assert imports, "a DAG file or plugin that does not use banet_ops.orchestration"
    assert all(n.startswith(allowed) for n in imports), imports


def test_private_zarr_and_ctypes_only_in_the_direct_reader() -> None:
    """cube/direct.py (with blosc_frames.py, which it alone uses) is the one place on private APIs (docs/cube.md)."""
    private = {}
    for path in sorted((REPO / "banet_ops").rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        found = sorted({n for n in names if n.startswith("zarr.core") or n == "ctypes" or n.endswith("blosc_frames")})
        if found:
            private[str(path.relative_to(REPO))] = found
    # inference/allocator.py calls glibc's mallopt (the C library, not another package's internals)
    assert set(private) == {"banet_ops/cube/direct.py", "banet_ops/cube/blosc_frames.py", "banet_ops/inference/allocator.py"}, private
    assert private["banet_ops/inference/allocator.py"] == ["ctypes"]
