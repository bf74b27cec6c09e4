"""Sphinx extension: ``.. cli-options::`` renders a command's options from its parser.

The options come from ``build_parser()`` of the module named as the directive's argument
(default :mod:`waitress_like.cli`), which is itself generated from the settings table, so
the reference cannot drift from the command. Each argument group becomes a rubric and
each option a ``.. option::`` description; setting options show the table's help (with
its reST markup) and their default.

Options of the directive: ``:program:`` (the program name for cross-references,
default: the parser's ``prog``) and ``:skip-settings:`` (leave out the setting options,
e.g. where another page lists them already).

``.. settings-not-in-waitress::`` lists the rows of the settings table that waitress 3
does not have, for the migration guide, so that a new row is named there automatically.

:func:`render_rst` and :func:`render_new_settings_rst` return the same reStructuredText
without needing Sphinx.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, Optional

if importlib.util.find_spec("waitress_like") is None:
    # Building the docs from a checkout without installing the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from waitress_like import config  # noqa: E402
from waitress_like.cli import shown_default  # noqa: E402

__all__ = ["WAITRESS_SETTINGS", "render_new_settings_rst", "render_rst", "setup"]

DEFAULT_MODULE = "waitress_like.cli"

#: The settings of waitress 3.x (``waitress.adjustments.Adjustments._params``).
WAITRESS_SETTINGS = frozenset(
    [
        "host",
        "port",
        "ipv4",
        "ipv6",
        "listen",
        "threads",
        "trusted_proxy",
        "trusted_proxy_count",
        "trusted_proxy_headers",
        "log_untrusted_proxy_headers",
        "clear_untrusted_proxy_headers",
        "url_scheme",
        "url_prefix",
        "backlog",
        "recv_bytes",
        "send_bytes",
        "outbuf_overflow",
        "outbuf_high_watermark",
        "inbuf_overflow",
        "connection_limit",
        "cleanup_interval",
        "channel_timeout",
        "log_socket_errors",
        "max_request_header_size",
        "max_request_body_size",
        "expose_tracebacks",
        "ident",
        "asyncore_loop_timeout",
        "asyncore_use_poll",
        "unix_socket",
        "unix_socket_perms",
        "sockets",
        "channel_request_lookahead",
        "server_name",
    ]
)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _signature(action: argparse.Action) -> str:
    if not action.option_strings:  # a positional argument
        if action.choices:
            return "{" + ",".join(str(choice) for choice in action.choices) + "}"
        return str(action.metavar or action.dest)
    takes_value = action.nargs != 0
    metavar = action.metavar or action.dest.upper()
    return ", ".join(f"{name} {metavar}" if takes_value else name for name in action.option_strings)


def _description(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    setting = config.SETTINGS_BY_NAME.get(action.dest)
    if setting is not None and setting.accepts_text:
        default = shown_default(setting)
        text = f"{setting.help} Default: " + (f"``{default}``." if default != "unset" else "unset.")
        if setting.deprecated:
            text += f" **Deprecated:** {setting.deprecated}."
        if action.nargs != 0 and isinstance(action, argparse._AppendAction):
            text += " May be repeated; the values add up."
        return _one_line(text)
    help_text = action.help or ""
    # The expansion argparse itself applies to help strings (%(default)s, %%). Plain
    # help is plain text, unlike the table's reST: escape what reST would read as markup
    # (a pattern like *.py would start emphasis).
    expanded = help_text % dict(vars(action), prog=parser.prog)
    return _one_line(re.sub(r"([*`|\\])", r"\\\1", expanded))


def _group_lines(parser: argparse.ArgumentParser, group: Any, skip_settings: bool) -> list[str]:
    actions = [action for action in group._group_actions if action.help is not argparse.SUPPRESS]
    if skip_settings:
        actions = [action for action in actions if action.dest not in config.SETTINGS_BY_NAME]
    if not actions:
        return []
    title = (group.title or "Options").rstrip(":")
    lines = [f".. rubric:: {title[0].upper()}{title[1:]}", ""]
    for action in actions:
        lines += [f".. option:: {_signature(action)}", "", f"   {_description(parser, action)}", ""]
    return lines


def render_rst(
    module_name: str = DEFAULT_MODULE, program: Optional[str] = None, skip_settings: bool = False
) -> str:
    """The options of ``module_name``'s ``build_parser()`` as reStructuredText."""
    parser: argparse.ArgumentParser = importlib.import_module(module_name).build_parser()
    lines = [f".. program:: {program or parser.prog}", ""]
    for group in parser._action_groups:  # argparse keeps groups in creation order
        lines += _group_lines(parser, group, skip_settings)
    return "\n".join(lines)


def render_new_settings_rst() -> str:
    """A bullet list of the settings waitress does not have, in table order."""
    lines = []
    for setting in config.SETTINGS:
        if setting.name not in WAITRESS_SETTINGS:
            topic = config.TOPICS[setting.topic]
            default = shown_default(setting)
            shown = f"``{default}``" if default != "unset" else "unset"
            lines.append(f"* ``{setting.name}`` ({topic}; default {shown}): {_one_line(setting.help)}")
    return "\n".join(lines) + "\n"


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: registers the ``cli-options`` directive."""
    from docutils import nodes
    from docutils.parsers.rst import directives
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class CLIOptionsDirective(SphinxDirective):
        has_content = False
        optional_arguments = 1
        option_spec = {"program": directives.unchanged, "skip-settings": directives.flag}

        def run(self) -> list[nodes.Node]:
            module_name = self.arguments[0] if self.arguments else DEFAULT_MODULE
            module = importlib.import_module(module_name)
            self.env.note_dependency(module.__file__ or "")
            self.env.note_dependency(config.__file__ or "")  # options come from the table
            text = render_rst(module_name, self.options.get("program"), "skip-settings" in self.options)
            content = StringList(text.splitlines(), source=f"<cli-options from {module_name}>")
            container = nodes.container()
            self.state.nested_parse(content, self.content_offset, container)
            return list(container.children)

    class NewSettingsDirective(SphinxDirective):
        has_content = False

        def run(self) -> list[nodes.Node]:
            self.env.note_dependency(config.__file__ or "")
            content = StringList(render_new_settings_rst().splitlines(), source="<settings-not-in-waitress>")
            container = nodes.container()
            self.state.nested_parse(content, self.content_offset, container)
            return list(container.children)

    app.add_directive("cli-options", CLIOptionsDirective)
    app.add_directive("settings-not-in-waitress", NewSettingsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
