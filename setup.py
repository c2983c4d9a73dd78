"""Build hook: ship the repository's top-level `weights/` folder inside the package as `aqa_cli/bundled/`.

All metadata lives in pyproject.toml. `weights/` stays at the top of the repository (where training
drops new checkpoints and their manifest); this copy makes a non-editable install (`pip install .`)
carry the bundled demo weights, which `aqa_cli.weights.bundled_dir()` finds there. Editable installs
and source checkouts read `weights/` directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

WEIGHTS = Path(__file__).parent / "weights"


class BuildPyWithWeights(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "aqa_cli" / "bundled"
        for path in sorted(WEIGHTS.glob("*")):
            if path.is_file() and not path.name.startswith("."):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / path.name)  # not copy2: keep umask modes, not 0600


setup(cmdclass={"build_py": BuildPyWithWeights})
