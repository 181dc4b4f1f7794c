"""The package: every module imports, and the wheel carries the assets and the console script."""
import importlib
import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import modpo

REPO = Path(__file__).resolve().parent.parent


def test_every_module_imports():
    names = [m.name for m in pkgutil.iter_modules(modpo.__path__, "modpo.") if m.name != "modpo.__main__"]
    assert {"modpo.family", "modpo.schema", "modpo.evaluate", "modpo.jobs", "modpo.cli"} <= set(names)
    for name in names + ["dashboard.common", "dashboard.front_page", "dashboard.compare_page", "dashboard.train_page"]:
        importlib.import_module(name)


def test_the_package_docstring_lists_every_module():
    names = {m.name for m in pkgutil.iter_modules(modpo.__path__)} - {"__main__"}
    missing = [n for n in names if f"{n}.py" not in modpo.__doc__]
    assert not missing, f"modpo/__init__.py does not describe {missing}"


@pytest.mark.slow
def test_the_wheel_carries_assets_dashboard_and_console_script(tmp_path):
    import shutil
    source = tmp_path / "src"  # setuptools writes build/ beside the sources: build a copy, not the checkout
    def skip(folder, names):  # the top level's hidden folders, data and outputs; caches everywhere
        top = Path(folder) == REPO
        return [n for n in names if n == "__pycache__" or top and (n.startswith(".") or n in (
            "checkpoints", "test-artifacts", "build") or n.endswith(".egg-info"))]
    shutil.copytree(REPO, source, ignore=skip)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("modpo_explorer-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("modpo/assets/demo_prompts.json", "modpo/assets/tiny-llama/model.safetensors",
                   "modpo/assets/tiny-llama/tokenizer.json", "modpo/schema.py", "dashboard/app.py",
                   "dashboard/.streamlit/config.toml"):
        assert needed in names, f"{needed} is not in {wheel.name}"
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "modpo = modpo.cli:run" in entry_points


LAYERS = ["weights", "loss", "pareto", "choose", "schema", "config", "family", "front", "plots", "data", "scorers",
          "votes", "models", "routing", "generate", "margins", "train", "conditioned", "evaluate", "coherence",
          "feedback", "instant", "sweep", "demo", "jobs", "cli", "__main__"]


def test_modules_import_only_downward():
    """The layer order of modpo/__init__.py and ARCHITECTURE.md, for top-level and lazy imports alike."""
    import ast
    rank = {m: i for i, m in enumerate(LAYERS)}
    files = sorted((REPO / "modpo").glob("*.py"))
    assert {f.stem for f in files} - {"__init__"} == set(LAYERS), "a module is missing from the layer list"
    upward = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                for target in [node.module] if node.module else [a.name for a in node.names]:
                    target = target.split(".")[0]
                    if f.stem in rank and rank[target] > rank[f.stem]:
                        upward.append(f"{f.stem} imports {target}")
    assert not upward, upward


def test_no_tracked_file_is_over_the_size_limit_but_the_allowed_ones():
    repo = Path(__file__).resolve().parent.parent
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    check = subprocess.run([sys.executable, "scripts/check_large_files.py", *tracked], cwd=repo, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr
    big = subprocess.run([sys.executable, "scripts/check_large_files.py", "--max-kb", "0", "README.md"], cwd=repo,
                         capture_output=True, text=True)
    assert big.returncode == 1 and "README.md" in big.stderr  # the check can fail
