"""Sphinx configuration for the waitress_like documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("_ext"))

project = "waitress_like"
author = "the waitress_like developers"
copyright = "2026, the waitress_like developers"
extensions = ["settings_table", "cli_reference"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
