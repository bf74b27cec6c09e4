"""``waitress-like-serve``: serve a WSGI application named ``MODULE:OBJECT``.

The options are generated from the settings table, one ``--name-with-dashes`` per setting
(booleans as ``--name``/``--no-name``), so no setting is declared here a second time.
Problems are reported as one line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Optional, Sequence

from . import __version__
from .config import SETTINGS, TOPICS, Setting
from .errors import ConfigError

__all__ = ["main", "build_parser", "load_app"]

_PROGRAM = "waitress-like-serve"


class CLIError(Exception):
    """A problem worth one line to the user, not a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROGRAM,
        description="Serve a WSGI application with waitress_like.",
        epilog="Every option can also be given as a keyword to serve() or in a PasteDeploy ini.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("app", nargs="?", metavar="MODULE:OBJECT", help="the application to serve")
    parser.add_argument(
        "--app",
        dest="app_option",
        metavar="MODULE:OBJECT",
        help="the application (instead of the positional)",
    )
    parser.add_argument(
        "--call", action="store_true", default=False, help="call OBJECT to get the application (a factory)"
    )
    parser.add_argument("--version", action="version", version=f"waitress_like {__version__}")
    groups = {topic: parser.add_argument_group(title) for topic, title in TOPICS.items()}
    for setting in SETTINGS:
        if setting.accepts_text:
            _add_setting_option(groups[setting.topic], setting)
    return parser


def _add_setting_option(group: Any, setting: Setting) -> None:
    plain_help = setting.help.replace("``", "")  # the table's help is reST for the docs
    help_text = f"{plain_help} (default: {setting.default_text})".replace("%", "%%")
    if setting.is_flag:
        group.add_argument(
            setting.cli_option, dest=setting.name, action="store_const", const="true", help=help_text
        )
        group.add_argument(
            "--no-" + setting.cli_option[2:],
            dest=setting.name,
            action="store_const",
            const="false",
            help=argparse.SUPPRESS,
        )
    elif setting.name == "listen":
        # waitress-serve accepts --listen several times; the values add up.
        group.add_argument(
            setting.cli_option, dest="listen", action="append", metavar=setting.metavar, help=help_text
        )
    else:
        group.add_argument(setting.cli_option, dest=setting.name, metavar=setting.metavar, help=help_text)


def load_app(spec: str, call: bool = False) -> Any:
    """Import ``MODULE:OBJECT`` (the current directory is importable)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CLIError(f"the application must be given as MODULE:OBJECT, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise CLIError(f"cannot import module {module_name!r}: no such module") from None
        raise
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CLIError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if call:
        target = target()
    if not callable(target):
        raise CLIError(f"{spec} is not callable, so it cannot be a WSGI application")
    return target


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    options = vars(parser.parse_args(argv))
    spec = options.pop("app_option", None) or options.pop("app", None)
    options.pop("app", None)
    call = options.pop("call", False)
    if not spec:
        parser.error("the application to serve is missing (MODULE:OBJECT)")
    if "listen" in options:
        options["listen"] = " ".join(options["listen"])
    from . import serve
    from .listeners import BindError

    try:
        app = load_app(spec, call)
        serve(app, **options)
    except (CLIError, ConfigError, BindError) as error:
        print(f"{_PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    return 0
