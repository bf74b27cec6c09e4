"""Sphinx extension: ``.. settings-table::`` renders every setting of waitress_like.

The rows come from :data:`waitress_like.config.SETTINGS`, so the documentation cannot
drift from the code: one table per topic (in :data:`~waitress_like.config.TOPICS`
order) with each setting's name, default, type and help.

Each setting's name cell carries a link target, ``setting-<name>`` (the anchor
``settings.html#setting-<name>``, as the CLI page has one per option). Under Sphinx the
extension also adds a ``setting`` object type, so ``:setting:`threads``` in any page
links to the row.

:func:`render_rst` returns the same reStructuredText without needing Sphinx, e.g. for
tests or a README generator.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

if importlib.util.find_spec("waitress_like") is None:
    # Building the docs from a checkout without installing the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from waitress_like import config  # noqa: E402

__all__ = ["render_rst", "setup", "target_name"]


def _cell(text: str) -> str:
    # One line per cell keeps the list-table indentation trivially right.
    return " ".join(text.split())


def target_name(setting_name: str) -> str:
    """The reStructuredText target of a setting's row."""
    return f"setting-{setting_name}"


def _setting_rows(setting: config.Setting) -> list[str]:
    description = setting.help
    if setting.deprecated:
        description += f" **Deprecated:** {setting.deprecated}."
    return [
        f"   * - .. _{target_name(setting.name)}:",
        "",
        f"       ``{setting.name}``",
        f"     - ``{_cell(setting.default_text)}``",
        f"     - {_cell(setting.type_name)}",
        f"     - {_cell(description)}",
    ]


def _topic_lines(title: str, settings: list[config.Setting]) -> list[str]:
    lines = [
        f".. rubric:: {title}",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 25 15 20 40",
        "",
        "   * - Setting",
        "     - Default",
        "     - Type",
        "     - Description",
    ]
    for setting in settings:
        lines.extend(_setting_rows(setting))
    lines.append("")
    return lines


def render_rst() -> str:
    """Every setting as reStructuredText: a rubric and a list-table per topic."""
    lines: list[str] = []
    for topic, title in config.TOPICS.items():
        settings = [s for s in config.SETTINGS if s.topic == topic]
        if settings:
            lines.extend(_topic_lines(title, settings))
    return "\n".join(lines)


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: registers the ``settings-table`` directive."""
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx import addnodes
    from sphinx.util.docutils import SphinxDirective

    class SettingsTableDirective(SphinxDirective):
        has_content = False

        def run(self) -> list[nodes.Node]:
            self.env.note_dependency(config.__file__)  # rebuild when the table changes
            source = f"<settings-table from {config.__name__}>"
            content = StringList(render_rst().splitlines(), source=source)
            container = nodes.container()
            self.state.nested_parse(content, self.content_offset, container)
            # The rows' targets become "setting" objects, for the :setting: role, and
            # index entries, as the options of the CLI page are.
            standard = self.env.get_domain("std")
            entries = []
            for setting in config.SETTINGS:
                anchor = nodes.make_id(target_name(setting.name))
                standard.note_object("setting", setting.name, anchor, location=self.get_location())  # type: ignore[attr-defined]
                entries.append(("pair", f"{setting.name}; setting", anchor, "", None))
            return [addnodes.index(entries=entries), *container.children]

    # The directive this also registers (".. setting::") is not used: the rows are the targets.
    app.add_object_type("setting", "setting", indextemplate="pair: %s; setting")
    app.add_directive("settings-table", SettingsTableDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
