"""The Python config file (``-c FILE``), as ``gunicorn.conf.py`` is, and where values come from.

The file is run as Python code; its module-level names are read:

* a name of the settings table is that setting (any value its converter accepts, so
  ``workers = multiprocessing.cpu_count() * 2 + 1`` works), and gunicorn's names for
  the same things are accepted too (:data:`GUNICORN_NAMES`: ``bind``, ``timeout``,
  ``keepalive``, ``accesslog``, ``forwarded_allow_ips``);
* a hook name (:data:`~waitress_like.hooks.HOOK_NAMES`) must be a callable: the hook;
* names starting with ``_``, modules, classes and other functions are the file's own
  helpers and are left alone;
* any other name gets a warning (a misspelt ``worker = 4`` should not pass unseen, but a
  gunicorn file with settings that have no equivalent here must still load).

Precedence, lowest first: the table's defaults; the ``WEB_CONCURRENCY`` environment
variable for ``workers``; the file; the command line. The command line's address
settings (``host``, ``port``, ``listen``, ``unix_socket``, ``fd``) replace the file's as
a group, since they cannot be combined. :func:`resolve` returns the merged settings with
the source of each one, which ``--print-config`` shows.

Nothing here validates values: ``Settings.from_mapping`` does, naming the setting.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import runpy
import traceback
from typing import Any, Callable, Mapping, MutableMapping, Optional

from .config import SETTINGS_BY_NAME
from .errors import ConfigError, WaitressLikeError, describe_exception
from .hooks import HOOK_NAMES, close_hook_name

__all__ = [
    "ADDRESS_SETTINGS",
    "GUNICORN_NAMES",
    "ConfigFile",
    "ConfigFileError",
    "ResolvedConfig",
    "load_config_file",
    "resolve",
]

#: gunicorn's setting names that mean one of ours.
GUNICORN_NAMES = {
    "bind": "listen",
    "timeout": "worker_timeout",
    "keepalive": "keepalive_timeout",
    "accesslog": "access_log",
    "forwarded_allow_ips": "trusted_proxy",
}
#: Settings that say where to listen; the command line's replace the file's as a group.
ADDRESS_SETTINGS = ("host", "port", "listen", "unix_socket", "fd", "sockets")

DEFAULT = "default"
COMMAND_LINE = "command line"
ENVIRONMENT = "environment (WEB_CONCURRENCY)"


class ConfigFileError(WaitressLikeError):
    """The config file cannot be read or run; the message names the file (and line)."""


@dataclasses.dataclass
class ConfigFile:
    """What one config file gives: settings (our names), hooks, and warnings (lines)."""

    path: str
    settings: dict[str, Any]
    hooks: dict[str, Callable[..., Any]]
    warnings: list[str]


def load_config_file(path: str) -> ConfigFile:
    """Run the file at ``path`` and read its names; raises :class:`ConfigFileError`."""
    if not os.path.isfile(path):
        raise ConfigFileError(f"config file {path}: no such file")
    try:
        namespace = runpy.run_path(path, run_name="__config__")
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        raise ConfigFileError(
            f"config file {path}{_line_of(error, path)}: {describe_exception(error)}"
        ) from error
    config = ConfigFile(os.path.abspath(path), {}, {}, [])
    for name, value in namespace.items():
        _read_name(config, name, value)
    return config


def _line_of(error: BaseException, path: str) -> str:
    if isinstance(error, SyntaxError) and error.lineno:
        return f", line {error.lineno}"
    target = os.path.abspath(path)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == target]
    return f", line {frames[-1].lineno}" if frames else ""


def _read_name(config: ConfigFile, name: str, value: Any) -> None:
    if name.startswith("_"):
        return
    if name in HOOK_NAMES:
        if not callable(value):
            raise ConfigFileError(f"config file {config.path}: hook {name} must be a function")
        config.hooks[name] = value
        return
    setting = GUNICORN_NAMES.get(name, name)
    if setting in SETTINGS_BY_NAME:
        _set(config, setting, value)
        return
    if inspect.ismodule(value) or inspect.isclass(value) or callable(value):
        hook = close_hook_name(name) if callable(value) else None
        if hook is not None:
            config.warnings.append(f"{config.path}: {name} is not a hook; did you mean {hook}?")
        return
    hint = _close_setting(name)
    config.warnings.append(f"{config.path}: unknown setting {name!r} ignored{hint}")


def _set(config: ConfigFile, setting: str, value: Any) -> None:
    if setting == "listen":
        # gunicorn's bind also takes unix:PATH and fd://N entries.
        entries = [value] if isinstance(value, str) else list(value)
        for entry in entries:
            text = str(entry)
            if text.startswith("unix:"):
                config.settings["unix_socket"] = text[len("unix:") :]
            elif text.startswith("fd://"):
                config.settings["fd"] = (*config.settings.get("fd", ()), text[len("fd://") :])
            else:
                config.settings.setdefault("listen", []).append(text)
        return
    config.settings[setting] = value


def _close_setting(name: str) -> str:
    import difflib

    matches = difflib.get_close_matches(name, [*SETTINGS_BY_NAME, *GUNICORN_NAMES], n=1, cutoff=0.75)
    return f"; did you mean {matches[0]!r}?" if matches else ""


# --------------------------------------------------------------------------- precedence


@dataclasses.dataclass
class ResolvedConfig:
    """Settings from every source, merged. ``given`` is ready for ``Settings.from_mapping``;
    ``sources`` names where each given setting came from (absent: the default)."""

    given: dict[str, Any]
    sources: dict[str, str]
    hooks: dict[str, Callable[..., Any]]
    warnings: list[str]
    config_path: Optional[str] = None
    command_line: dict[str, Any] = dataclasses.field(default_factory=dict)

    def source(self, name: str) -> str:
        return self.sources.get(name, DEFAULT)


def resolve(
    command_line: Mapping[str, Any], config_path: Optional[str], environ: MutableMapping[str, str]
) -> ResolvedConfig:
    """Merge defaults, ``WEB_CONCURRENCY``, the config file and the command line."""
    given: dict[str, Any] = {}
    sources: dict[str, str] = {}
    concurrency = environ.get("WEB_CONCURRENCY", "").strip()
    if concurrency:
        try:
            given["workers"] = SETTINGS_BY_NAME["workers"].parse(concurrency)
        except ConfigError as error:
            raise ConfigError("workers", concurrency, f"{error.reason} (from WEB_CONCURRENCY)") from None
        sources["workers"] = ENVIRONMENT
    config = load_config_file(config_path) if config_path else ConfigFile("", {}, {}, [])
    file_settings = dict(config.settings)
    if any(name in command_line for name in ADDRESS_SETTINGS):
        for name in ADDRESS_SETTINGS:
            file_settings.pop(name, None)
    for layer, source in ((file_settings, f"config file {config_path}"), (command_line, COMMAND_LINE)):
        for name, value in layer.items():
            given[name] = value
            sources[name] = source
    return ResolvedConfig(
        given, sources, config.hooks, config.warnings, config.path or None, dict(command_line)
    )
