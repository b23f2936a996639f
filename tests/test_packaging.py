"""A normal, non-editable install works: every package and the migrations are in the wheel.

The wheel is built from a copy of the source (as `pip install .` would) and
installed without `-e` into a fresh virtual environment; its `provenance`
then migrates a database, ingests a video and finds it again, run from a
directory outside the repository so nothing can be imported from the checkout.
The environment borrows the already installed dependencies
(`--system-site-packages`) so the test needs no downloads; it is made
without pip of its own (`--without-pip`: seeding one costs more than the
rest of the install), and the borrowed pip installs the wheel into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_PACKAGES = ("fingerprints", "monitor", "storage")


def _declared_packages() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_package_in_the_tree_is_declared():
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in TOP_PACKAGES
             for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts}
    declared = _declared_packages()
    missing = found - declared
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert declared - found == {"storage.migrations", "storage.migrations.versions"}


def _run(*args: str | Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_a_wheel_installed_without_editable_mode_migrates_ingests_and_finds(tmp_path, chair_dir):
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for top in (*TOP_PACKAGES, "alembic"):
        shutil.copytree(ROOT / top, source / top, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
         "-w", wheels, cwd=tmp_path)
    (wheel,) = wheels.glob("provenance-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel, cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVENANCE_", "PYTHON"))}
    where = _run(python, "-c", "import monitor, storage.db; print(monitor.__file__); print(storage.db.ALEMBIC_DIR)",
                 cwd=outside, env=env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where

    provenance = venv / "bin" / "provenance"
    base = ["--data-dir", tmp_path / "data"]
    upgraded = _run(provenance, *base, "db", "upgrade", cwd=outside, env=env).stdout
    assert "database at revision" in upgraded
    _run(provenance, *base, "ingest", chair_dir / "chair-orig-22-sd-bar.mp4", "--url", "https://example.org/v/1",
         "--published-at", "2024-03-01T10:00:00Z", cwd=outside, env=env)
    report = json.loads(_run(provenance, *base, "find-earliest", chair_dir / "chair-19-sd-bar.mp4",
                             "--format", "json", cwd=outside, env=env).stdout)
    assert [a["url"] for a in report["appearances"]] == ["https://example.org/v/1"]
    page = _run(provenance, *base, "find-earliest", chair_dir / "chair-19-sd-bar.mp4", "--format", "html",
                cwd=outside, env=env).stdout  # the report templates are package data
    assert "https://example.org/v/1" in page and "data:image/jpeg;base64," in page
