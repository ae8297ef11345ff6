"""Sphinx configuration for eventlet-asyncio-bridge (built with -W in CI)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("EVENTLET_HUB", "bridge.hub")

project = "eventlet-asyncio-bridge"
author = "eventlet-asyncio-bridge developers"
copyright = "2026, eventlet-asyncio-bridge developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**/*_example.py"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Intersphinx needs the network, which CI does not have: references to the
# standard library are written as plain text instead.
intersphinx_mapping: dict[str, tuple[str, None]] = {}
nitpicky = False
html_theme = "furo"
html_static_path: list[str] = []
html_title = "eventlet-asyncio-bridge"
