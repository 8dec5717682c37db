"""Build hook: the top-level keywords/, probes/ and watch/ (the one copy you edit) go into the package.

Everything else about the build is in pyproject.toml. A wheel gets ``harness/bundled/keywords``,
``harness/bundled/probes`` and ``harness/bundled/watch``; an editable install reads the top-level folders directly
(``harness.operations.workspace.bundled_dir``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithBundled(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in ("keywords", "probes", "watch"):
            src = ROOT / name
            dst = Path(self.build_lib) / "harness" / "bundled" / name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithBundled})
