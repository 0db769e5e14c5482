"""Compose's ``.env``: variables for ``${VAR}`` interpolation, read from the file
next to the (first) config file, or from ``--env-file PATH`` (which pyinit passes
on as ``$PYINIT_ENV_FILE``, so a reload reads the same). The process environment
wins over the file. The values feed interpolation only, as in Compose; a service
gets them in its environment only by naming them (``environment: [NAME]``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import yaml

from pyinit.config.environment import env_file
from pyinit.config.nodes import Reader

ENV = "PYINIT_ENV_FILE"


def with_dotenv(r: Reader, root: yaml.Node, environ: Mapping[str, str]) -> Mapping[str, str]:
    """``environ`` over the variables of the .env file (missing .env: ``environ``)."""
    chosen = environ.get(ENV)
    path = chosen or os.path.join(os.path.dirname(r.path), ".env")
    values = env_file(r, path, root, "--env-file" if chosen else ".env", required=bool(chosen))
    return {**values, **environ} if values else environ
