"""The settings reference gives every setting a link target, as the CLI page gives options.

Built with Sphinx from the real extension: the page with ``.. settings-table::`` must have
an anchor per setting (``settings.html#setting-<name>``), and ``:setting:`name``` must
resolve to it from another page.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from waitress_like.config import SETTINGS

REPO_ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = REPO_ROOT / "docs" / "_ext"


def _load_extension() -> Any:
    spec = importlib.util.spec_from_file_location("settings_table", EXTENSIONS / "settings_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_setting_has_a_target_in_the_generated_text():
    extension = _load_extension()
    rst = extension.render_rst()
    for setting in SETTINGS:
        assert f".. _{extension.target_name(setting.name)}:" in rst


def test_every_setting_is_a_link_target(tmp_path: Path):
    application = pytest.importorskip("sphinx.application")
    make_id = pytest.importorskip("docutils.nodes").make_id
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(EXTENSIONS)!r})\nextensions = ['settings_table']\nproject = 't'\n"
    )
    (tmp_path / "index.rst").write_text(".. toctree::\n\n   settings\n   uses\n")
    (tmp_path / "settings.rst").write_text("Settings\n========\n\n.. settings-table::\n")
    references = "\n".join(f"* :setting:`{setting.name}`" for setting in SETTINGS)
    (tmp_path / "uses.rst").write_text(f"Uses\n====\n\n{references}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Sphinx's own, not ours
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        app = application.Sphinx(
            str(tmp_path), str(tmp_path), str(tmp_path / "_build"), str(tmp_path / "_doctrees"),
            "html", status=None, warning=None, warningiserror=True,
        )  # fmt: skip
        app.build()
    settings_html = (tmp_path / "_build" / "settings.html").read_text()
    uses_html = (tmp_path / "_build" / "uses.html").read_text()
    ids = set(re.findall(r'id="([^"]+)"', settings_html))
    links = set(re.findall(r'href="settings\.html#([^"]+)"', uses_html))
    expected = {make_id(f"setting-{setting.name}") for setting in SETTINGS}
    assert expected <= ids
    assert links == expected
