"""Build hook: compile csrc/ through cffi and ship the C sources and board
profiles inside the package, so a non-editable install finds them."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_DIRS = {"csrc": "runtime/_data/csrc", "board_profiles": "runtime/_data/board_profiles"}


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        for src, dst in DATA_DIRS.items():
            source = ROOT / src
            if source.is_dir():
                target = Path(self.build_lib) / dst
                shutil.copytree(source, target, dirs_exist_ok=True)


setup(
    cffi_modules=["runtime/_build.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithData},
)
