"""setuptools' PEP 517 backend, less one notice on editable installs.

This project maps two folders into its one package (cli/ → trends.cli, conf/ → trends.conf; see pyproject.toml), so
setuptools implements `pip install -e .` with a meta path finder and says so every time, as a warning: "Editable
installation. Please be careful with folders in your working directory with the same name as your package". Here the
folder of that name, trends/, is the package itself, so the notice only buries real warnings; this backend drops that
one notice and changes nothing else. Every other setuptools warning still shows.
"""

import warnings

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (the whole PEP 517/660 interface, unchanged)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Editable installation\.", category=UserWarning)
        return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
