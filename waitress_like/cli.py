"""``waitress-like-serve`` and ``python -m waitress_like``: serve a WSGI application.

Every option of ``waitress-serve`` works unchanged. The setting options are generated from
the settings table, one ``--name-with-dashes`` per setting that accepts text (booleans as
``--name``/``--no-name``; list settings such as ``--listen`` may be repeated and add up),
so no setting is declared here a second time.

Problems are reported as one line on stderr and a non-zero exit status: 2 when the
command line cannot be parsed (unknown option, missing value or application), 1 for
everything else (a bad setting value, an application that cannot be imported, an address
that cannot be bound, requests cut because the shutdown grace period ran out).
``--traceback`` adds the Python traceback where there is one.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
import os
import sys
import traceback
import warnings
from typing import Any, Iterator, Mapping, NoReturn, Optional, Sequence

from . import __version__
from .config import SETTINGS, SETTINGS_BY_NAME, TOPICS, Setting, Settings
from .configfile import ConfigFileError, ResolvedConfig, resolve
from .errors import ConfigError, WaitressLikeError, describe_exception
from .importer import AppLoadError, AppSpecError, load_application
from .listeners import BindError

__all__ = [
    "CLIError",
    "SHORT_OPTIONS",
    "add_setting_option",
    "build_parser",
    "format_settings",
    "format_sources",
    "format_value",
    "load_app",
    "main",
    "settings_given",
    "shown_default",
    "validate_settings",
]

log = logging.getLogger("waitress_like")

PROGRAM = "waitress-like-serve"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A problem worth one line to the user, not a traceback.

    ``exit_status`` is what the command exits with. An underlying exception, if any, is
    the ``__cause__`` and is shown with ``--traceback``.
    """

    def __init__(self, message: str, exit_status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_status = exit_status


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`CLIError`, not usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(message, EXIT_USAGE)


# --------------------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser: the application, one option per text setting, commands.

    Settings that are not given are absent from the parsed namespace, so only what the
    user typed reaches the settings table (a given default still counts as given, which
    matters for conflicts such as ``--listen`` with ``--port``).
    """
    parser = _Parser(
        prog=PROGRAM,
        usage="%(prog)s [OPTIONS] MODULE:OBJECT",
        description=(
            "Serve a WSGI application with waitress_like. The application is named "
            "MODULE:OBJECT, e.g. myproject.wsgi:application (MODULE.OBJECT is accepted "
            "too, as waitress-serve does); the current directory is importable. Every "
            "waitress-serve option works unchanged."
        ),
        epilog=(
            "Every setting can also be given as a keyword to serve() or in a PasteDeploy "
            "ini section. Exit status: 0 after a clean stop (Ctrl-C or SIGTERM), 1 for a "
            "bad setting, application or address or for requests cut at shutdown, 2 for a "
            "command line that cannot be parsed."
        ),
        argument_default=argparse.SUPPRESS,
        add_help=False,
        allow_abbrev=True,  # getopt, which waitress-serve uses, accepts unique prefixes too
    )
    _add_application_options(parser.add_argument_group("Application"))
    groups = {topic: parser.add_argument_group(f"{title} settings") for topic, title in TOPICS.items()}
    for setting in SETTINGS:
        if setting.accepts_text:
            add_setting_option(groups[setting.topic], setting)
    _add_command_options(parser.add_argument_group("Command"))
    _add_reload_options(parser.add_argument_group("Development"))
    return parser


_RELOAD_VALUE_OPTIONS = ("--reload-dir", "--reload-include", "--reload-exclude")


def _add_reload_options(group: Any) -> None:
    group.add_argument(
        "--reload",
        action="store_true",
        default=False,
        help="restart the server when source files change (development only; uses watchfiles "
        "when installed, polling otherwise)",
    )
    group.add_argument(
        "--reload-dir", action="append", dest="reload_dirs", metavar="DIR",
        help="a directory to watch (repeatable; default: the current directory)",
    )  # fmt: skip
    group.add_argument(
        "--reload-include", action="append", dest="reload_include", metavar="PATTERN",
        help="file name pattern to watch (repeatable; default: *.py *.ini)",
    )  # fmt: skip
    group.add_argument(
        "--reload-exclude", action="append", dest="reload_exclude", metavar="PATTERN",
        help="file or directory name pattern to ignore (repeatable; default: .* *~ *.pyc "
        "__pycache__ *.egg-info node_modules)",
    )  # fmt: skip


def _without_reload_options(argv: Sequence[str]) -> list[str]:
    """The command line the reloaded server runs with: ours, minus the reload options."""
    kept: list[str] = []
    skip_next = False
    for argument in argv:
        if skip_next:
            skip_next = False
        elif argument == "--reload" or argument.startswith(tuple(o + "=" for o in _RELOAD_VALUE_OPTIONS)):
            pass
        elif argument in _RELOAD_VALUE_OPTIONS:
            skip_next = True
        else:
            kept.append(argument)
    return kept


def _add_application_options(group: Any) -> None:
    group.add_argument("app", nargs="?", metavar="MODULE:OBJECT", help="the WSGI application to serve")
    group.add_argument(
        "--app",
        dest="app_option",
        metavar="MODULE:OBJECT",
        help="the application, as an option instead of the positional argument",
    )
    group.add_argument(
        "--call",
        action="store_true",
        default=False,
        help="call OBJECT without arguments to get the application (an application factory)",
    )
    group.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="a Python config file, as gunicorn.conf.py: module-level names are settings "
        "or hooks; options given here override it (SIGHUP reads it again)",
    )


def _add_command_options(group: Any) -> None:
    group.add_argument("-h", "--help", action="help", help="show this help and exit")
    group.add_argument(
        "--version",
        action="version",
        version=f"waitress_like {__version__}",
        help="show the version and exit",
    )
    group.add_argument(
        "--check-config",
        action="store_true",
        default=False,
        help="check the settings and import the application, report every problem, exit 0 or 1",
    )
    group.add_argument(
        "--print-config",
        action="store_true",
        default=False,
        help="print the effective settings, one 'name = value' per line, and exit",
    )
    group.add_argument(
        "--traceback",
        action="store_true",
        default=False,
        help="on an error, also print the Python traceback",
    )


def shown_default(setting: Setting) -> str:
    """A setting's default as it would be typed on the command line or in an ini file."""
    if setting.default is None:
        return "unset" if setting.default_text == "None" else setting.default_text
    return format_value(setting, setting.default) or "(empty)"


def _is_repeatable(setting: Setting) -> bool:
    # List settings add up when repeated, as waitress-serve's --listen does.
    return setting.type_name.startswith("list of ")


#: Short options of settings, as gunicorn spells them.
SHORT_OPTIONS = {"workers": "-w"}


def add_setting_option(group: Any, setting: Setting) -> None:
    """Add ``setting``'s option (``--name`` / ``--no-name`` for flags) to a parser group."""
    plain_help = setting.help.replace("``", "")  # the table's help is reST for the docs
    help_text = f"{plain_help} Default: {shown_default(setting)}."
    if setting.deprecated:
        help_text += f" Deprecated: {setting.deprecated}."
    help_text = help_text.replace("%", "%%")
    if setting.is_flag:
        group.add_argument(
            setting.cli_option, dest=setting.name, action=argparse.BooleanOptionalAction, help=help_text
        )
    elif _is_repeatable(setting):
        group.add_argument(
            setting.cli_option,
            dest=setting.name,
            action="append",
            metavar=setting.metavar,
            help=help_text + " May be repeated.",
        )
    else:
        names = [SHORT_OPTIONS[setting.name]] if setting.name in SHORT_OPTIONS else []
        group.add_argument(
            *names, setting.cli_option, dest=setting.name, metavar=setting.metavar, help=help_text
        )


def settings_given(options: argparse.Namespace) -> dict[str, Any]:
    """The settings named on the command line, as the strings (or flags) given."""
    given: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.accepts_text and hasattr(options, setting.name):
            value = getattr(options, setting.name)
            given[setting.name] = " ".join(value) if isinstance(value, list) else value
    return given


def _option_name(setting_name: str) -> str:
    setting = SETTINGS_BY_NAME.get(setting_name)
    return setting.cli_option if setting is not None and setting.accepts_text else setting_name


def _config_message(error: ConfigError, sources: Optional[Mapping[str, str]] = None) -> str:
    source = (sources or {}).get(error.setting, "")
    if source.startswith("config file"):  # name it as the file does, and the file
        return f"{error.setting} ({source}): {error.reason} (got {error.value!r})"
    return f"{_option_name(error.setting)}: {error.reason} (got {error.value!r})"


@contextlib.contextmanager
def _reported(sources: Optional[Mapping[str, str]] = None) -> Iterator[None]:
    """Turn the errors of starting a server into CLIError, one line each."""
    try:
        yield
    except ConfigError as error:
        raise CLIError(_config_message(error, sources)) from None
    except BindError as error:
        raise CLIError(error.strerror or str(error)) from None
    except AppSpecError as error:
        raise CLIError(error.message, EXIT_USAGE) from None
    except AppLoadError as error:
        raise CLIError(error.message) from error.__cause__
    except WaitressLikeError as error:  # a lifespan startup, a hook, workers that cannot start
        raise CLIError(str(error)) from error.__cause__


def _unknown_argument_message(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    options = [word for word in extras if word.startswith("-")]
    if not options:
        return f"unexpected argument {extras[0]!r}: give exactly one application"
    option = options[0].split("=", 1)[0]
    known = [name for action in parser._actions for name in action.option_strings]
    matches = difflib.get_close_matches(option, known, n=1, cutoff=0.7)
    hint = f"; did you mean {matches[0]}?" if matches else ""
    return f"unknown option {option}{hint} (see --help)"


# --------------------------------------------------------------------------- the application


def load_app(spec: str, call: bool = False) -> Any:
    """Import the application ``MODULE:OBJECT`` (or ``MODULE.OBJECT``) and return it.

    :func:`waitress_like.importer.load_application` with its errors as :class:`CLIError`:
    a spec that is not ``MODULE:OBJECT`` is a usage error (exit status 2), any other
    problem exits 1; an exception raised while importing or calling is kept as the
    ``__cause__``.
    """
    try:
        return load_application(spec, call_factory=call)
    except AppSpecError as error:
        raise CLIError(error.message, EXIT_USAGE) from None
    except AppLoadError as error:
        raise CLIError(error.message) from error.__cause__


# --------------------------------------------------------------------------- settings


def validate_settings(given: dict[str, Any], sources: Optional[Mapping[str, str]] = None) -> Settings:
    """Validate the command line's settings; warnings go to stderr, errors are CLIError
    (naming the config file for a value that came from one, as ``sources`` says)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            settings = Settings.from_mapping(given)
        except ConfigError as error:
            raise CLIError(_config_message(error, sources)) from None
    for warning in caught:
        print(f"{PROGRAM}: warning: {warning.message}", file=sys.stderr)
    return settings


def _each_setting_problem(given: dict[str, Any]) -> Iterator[str]:
    """Every bad value, then (if each value is fine) the first conflict between them."""
    found = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, value in given.items():
            try:
                SETTINGS_BY_NAME[name].parse(value)
            except ConfigError as error:
                found = True
                yield _config_message(error)
    if not found:
        try:
            validate_settings(given)
        except CLIError as error:
            yield error.message


def format_value(setting: Setting, value: Any) -> str:
    """A validated value in the text form the setting accepts (as in an ini file)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    if setting.metavar == "PERMS" and isinstance(value, int):
        return format(value, "o")
    if isinstance(value, (set, frozenset)):
        return " ".join(sorted(str(item) for item in value))
    if isinstance(value, (tuple, list)):
        return " ".join(str(item) for item in value)
    return str(value)


def format_settings(settings: Settings) -> list[str]:
    """One ``name = value`` line per setting that accepts text, in table order."""
    values = settings.as_dict()
    return [
        f"{setting.name} = {format_value(setting, values[setting.name])}".rstrip()
        for setting in SETTINGS
        if setting.accepts_text
    ]


# --------------------------------------------------------------------------- commands


def format_sources(config: ResolvedConfig) -> list[str]:
    """Comment lines saying where each setting not at its default came from, and the hooks."""
    lines = ["# where the values come from (every other setting: its default):"]
    for setting in SETTINGS:
        if setting.accepts_text and setting.name in config.sources:
            lines.append(f"#   {setting.name}: {config.source(setting.name)}")
    if config.hooks:
        lines.append(f"# hooks from {config.config_path}: {', '.join(sorted(config.hooks))}")
    return lines


def _check_config(spec: Optional[str], call: bool, given: dict[str, Any]) -> int:
    problems = list(_each_setting_problem(given))
    if not spec:
        problems.append("no application given: name it as MODULE:OBJECT")
    else:
        try:
            load_app(spec, call)
        except CLIError as error:
            problems.append(error.message)
    for problem in problems:
        print(f"{PROGRAM}: error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_FAILURE
    print(f"{PROGRAM}: configuration OK")
    return EXIT_OK


@contextlib.contextmanager
def _logging_from(given: Mapping[str, Any]) -> Iterator[None]:
    """Logging set up from the logging settings, for as long as the server runs."""
    from .logsetup import configure_logging, logging_settings

    with _reported():
        logs = configure_logging(logging_settings(given))
    try:
        yield
    finally:
        logs.close()


def _serve(app: Any, given: dict[str, Any]) -> int:
    """Serve in this process until SIGTERM or SIGINT, then drain; 0 if every request in
    flight finished. What ``serve()`` does, keeping the result of the drain."""
    from .process import run_one_process

    with _logging_from(given), _reported():
        clean = run_one_process(app, given)
    return EXIT_OK if clean else EXIT_FAILURE


def _supervise(spec: str, call: bool, config: ResolvedConfig) -> int:
    """Serve with worker processes (see :mod:`waitress_like.supervisor`)."""
    from .hooks import Hooks
    from .supervisor import AppSource, Supervisor

    def reload_config() -> tuple[dict[str, Any], Hooks]:
        fresh = resolve(config.command_line, config.config_path, os.environ)
        return fresh.given, Hooks(fresh.hooks)

    with _logging_from(config.given):
        with _reported(config.sources):
            supervisor = Supervisor(
                AppSource(spec=spec, call_factory=call),
                config.given,
                Hooks(config.hooks),
                config_path=config.config_path,
                reload_config=reload_config,
            )
        with _reported(config.sources):
            clean = supervisor.run()
    return EXIT_OK if clean else EXIT_FAILURE


def _resolve(options: argparse.Namespace) -> ResolvedConfig:
    """The settings from every source; warnings about the config file go to stderr."""
    try:
        config = resolve(settings_given(options), getattr(options, "config", None), os.environ)
    except ConfigError as error:
        raise CLIError(_config_message(error)) from None
    except ConfigFileError as error:
        raise CLIError(str(error)) from error.__cause__
    for warning in config.warnings:
        print(f"{PROGRAM}: warning: {warning}", file=sys.stderr)
    return config


def _run(options: argparse.Namespace) -> int:
    config = _resolve(options)
    given = config.given
    if options.print_config:
        for line in format_settings(validate_settings(given, config.sources)) + format_sources(config):
            print(line)
        return EXIT_OK
    positional = getattr(options, "app", None)
    option = getattr(options, "app_option", None)
    if positional and option:
        raise CLIError("give the application once: as MODULE:OBJECT or with --app", EXIT_USAGE)
    spec = positional or option
    if options.check_config:
        return _check_config(spec, options.call, given)
    if not spec:
        raise CLIError("no application given: name it as MODULE:OBJECT (see --help)", EXIT_USAGE)
    settings = validate_settings(given, config.sources)  # before importing a possibly slow application
    if options.reload:
        from .reload import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, run_with_reloader

        # The supervisor never imports the application: each restart does, in a child.
        return run_with_reloader(
            _without_reload_options(options.argv),
            getattr(options, "reload_dirs", None) or (),
            getattr(options, "reload_include", None) or DEFAULT_INCLUDE,
            getattr(options, "reload_exclude", None) or DEFAULT_EXCLUDE,
        )
    if settings.workers > 1 or settings.max_requests > 0 or config.hooks:
        return _supervise(spec, options.call, config)
    return _serve(load_app(spec, options.call), given)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    show_traceback = False
    try:
        arguments = list(sys.argv[1:] if argv is None else argv)
        options, extras = parser.parse_known_args(arguments)
        options.argv = arguments
        if extras:
            raise CLIError(_unknown_argument_message(parser, extras), EXIT_USAGE)
        show_traceback = options.traceback
        return _run(options)
    except CLIError as error:
        message = error.message
        if error.__cause__ is not None:
            if show_traceback:
                traceback.print_exception(
                    type(error.__cause__), error.__cause__, error.__cause__.__traceback__
                )
            else:
                message += " (--traceback shows where)"
        print(f"{PROGRAM}: error: {message}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return 130  # interrupted before serving started, as a shell reports it
    except Exception as error:
        if show_traceback:
            traceback.print_exc()
        hint = "" if show_traceback else " (--traceback shows where)"
        print(f"{PROGRAM}: error: unexpected {describe_exception(error)}{hint}", file=sys.stderr)
        return EXIT_FAILURE
