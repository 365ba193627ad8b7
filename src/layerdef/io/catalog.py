"""The built-in weapon-system catalog (approximate public figures, see catalog.yaml)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, dict[str, Any]]:
    """System name -> {name, covers: {layer: radius km}}, as shipped with the package."""
    text = resources.files("layerdef.io").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
