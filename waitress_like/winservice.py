"""Run a WSGI application as a Windows service.

Two layers:

* :class:`ServiceRunner` is platform-neutral: it loads the application (``MODULE:OBJECT``
  or a PasteDeploy ini file), serves it on a background thread, reports a startup error
  instead of raising it, and stops the server from any thread within a grace time. The
  tests exercise it on every platform.
* The pywin32 glue (:func:`main`, and the ``WaitressLikeService`` class built on first
  use) only translates between the service control manager and the runner. pywin32 is
  imported inside it alone, so this module imports anywhere.

Install, remove, start and stop through pywin32's command line::

    python -m waitress_like.winservice --app myproject.wsgi:application \\
        --listen 0.0.0.0:8080 --threads 8 --startup auto install
    python -m waitress_like.winservice start
    python -m waitress_like.winservice stop
    python -m waitress_like.winservice remove

The application, its directory and the settings given at ``install`` (or ``update``) are
stored in the service's registry key (``HKLM\\SYSTEM\\CurrentControlSet\\Services\\NAME\\
Parameters``) and read back when the service starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn, Optional, Sequence

if TYPE_CHECKING:
    from .server import Server

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "STOP_MARGIN_SECONDS",
    "ServiceCommand",
    "ServiceConfig",
    "ServiceRunner",
    "build_parser",
    "main",
    "parse_command",
]

log = logging.getLogger("waitress_like")

DEFAULT_SERVICE_NAME = "waitress_like"
DEFAULT_DISPLAY_NAME = "waitress_like WSGI server"
#: Time allowed on top of the grace period for closing what is left and stopping threads.
STOP_MARGIN_SECONDS = 5.0
#: How long the service may take to import the application and bind its sockets.
DEFAULT_START_TIMEOUT_SECONDS = 60.0

# The class path pythonservice.exe imports (not __name__, which is __main__ under -m);
# the class itself is built by the module's __getattr__.
_SERVICE_CLASS_STRING = "waitress_like.winservice.WaitressLikeService"


# --------------------------------------------------------------------------- the runner


class ServiceRunner:
    """Serve one application on a background thread, for a service manager.

    ``app_spec`` is ``MODULE:OBJECT`` (``call=True``: a factory to call) or the path of a
    PasteDeploy ini file, optionally ``FILE.ini#name``; an ini's ``[server:main]``
    settings apply, and ``settings`` override them.

    Thread contract: :meth:`start` once, from the controlling thread; :meth:`stop`,
    :meth:`wait_started` and :meth:`wait` from any thread, any number of times.
    """

    def __init__(
        self, app_spec: str, settings: Optional[Mapping[str, Any]] = None, *, call: bool = False
    ) -> None:
        self.app_spec = app_spec
        self.settings = dict(settings or {})
        self.call = call
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._server: Optional[Server] = None
        self._stop_requested = False
        self._startup_error: Optional[BaseException] = None

    # -- state ---------------------------------------------------------------------------

    @property
    def startup_error(self) -> Optional[BaseException]:
        """Why the server did not start, or stopped on its own (the exception), or None."""
        return self._startup_error

    @property
    def startup_error_message(self) -> Optional[str]:
        """:attr:`startup_error` as one line for a log, or None."""
        error = self._startup_error
        if error is None:
            return None
        from .errors import describe_exception
        from .listeners import BindError

        if isinstance(error, BindError) and error.strerror:
            return error.strerror  # the message without "[Errno N]"
        if type(error).__module__.startswith("waitress_like"):
            return str(error)
        return describe_exception(error)

    @property
    def server(self) -> Optional[Server]:
        """The running :class:`~waitress_like.server.Server`, or None."""
        return self._server

    @property
    def running(self) -> bool:
        """True while the serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- control -------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving on a new thread; returns at once (see :meth:`wait_started`)."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("this runner was already started")
            self._thread = threading.Thread(target=self._serve, name="waitress_like-service", daemon=True)
            if self._stop_requested:
                self._started.set()  # stopped before it started: nothing to run
                return
        self._thread.start()

    def wait_started(self, timeout: Optional[float] = None) -> bool:
        """Wait until the server listens; False if it failed (see :attr:`startup_error`),
        was stopped first, or ``timeout`` seconds passed."""
        self._started.wait(timeout)
        return self._server is not None and self._startup_error is None and not self._stop_requested

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until serving ends (after :meth:`stop` or a failure); True if it has."""
        thread = self._thread
        if thread is not None and thread.ident is not None:
            thread.join(timeout)
        return not self.running

    @property
    def stop_timeout_seconds(self) -> float:
        """How long :meth:`stop` takes at most without a ``timeout``: the server's
        ``graceful_timeout`` plus :data:`STOP_MARGIN_SECONDS`."""
        server = self._server
        grace = server.settings.graceful_timeout if server is not None else 0.0
        return float(grace) + STOP_MARGIN_SECONDS

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Close the server gracefully; True if serving ended in time.

        New connections are refused at once and requests in flight may finish: for the
        ``graceful_timeout`` setting, or with ``timeout`` for that many seconds less a
        margin (at most :data:`STOP_MARGIN_SECONDS`, at most half) to close what is left.
        Returns within about ``timeout`` (default :attr:`stop_timeout_seconds`) seconds.
        Safe before :meth:`start`, during startup (the server is closed as soon as it
        exists) and after the runner has stopped.
        """
        total = self.stop_timeout_seconds if timeout is None else timeout
        deadline = time.monotonic() + total
        with self._lock:
            self._stop_requested = True
            server = self._server
        if server is not None:
            grace = None if timeout is None else max(0.0, timeout - min(STOP_MARGIN_SECONDS, timeout / 2))
            server.close(timeout=grace)  # waits for the drain, then for the loop to end
        return self.wait(max(0.0, deadline - time.monotonic()))

    # -- the serving thread ----------------------------------------------------------------

    def _serve(self) -> None:
        try:
            server = self._create_server()
        except BaseException as error:  # reported, not raised: nobody could catch it here
            self._startup_error = error
            self._started.set()
            return
        with self._lock:
            stop_first = self._stop_requested
            if not stop_first:
                self._server = server
        if stop_first:
            server.close()
            self._started.set()
            return
        server.print_listen("Serving on {}")
        self._started.set()
        try:
            server.run()
        except BaseException as error:  # e.g. an ASGI application's lifespan startup failed
            self._startup_error = error
            log.error("the server stopped: %s", self.startup_error_message)

    def _create_server(self) -> Server:
        from . import create_server
        from .importer import load_application
        from .paste import load_ini, split_ini_spec
        from .supervisor import AppSource, Supervisor, wants_supervisor

        ini = split_ini_spec(self.app_spec)
        if ini is None and wants_supervisor(self.settings, {}):
            # Worker processes: each imports the application itself (spawned on Windows).
            source = AppSource(spec=self.app_spec, call_factory=self.call)
            supervisor = Supervisor(source, dict(self.settings), log_listen=False)
            supervisor.start()
            return supervisor  # type: ignore[return-value]  # Server's run/close/print_listen/settings
        if ini is not None:
            app, ini_settings = load_ini(ini[0], ini[1])
            settings = {**ini_settings, **self.settings}
        else:
            app, settings = load_application(self.app_spec, call_factory=self.call), self.settings
        return create_server(app, **settings)


# --------------------------------------------------------------------------- configuration


class ServiceConfig:
    """What a service runs: stored at install time, read back when the service starts.

    ``settings`` are the setting strings given at install; ``directory`` becomes the
    working directory (and so is importable) before the application is loaded.
    """

    def __init__(
        self,
        app_spec: str,
        settings: Optional[Mapping[str, Any]] = None,
        *,
        call: bool = False,
        directory: Optional[str] = None,
    ) -> None:
        self.app_spec = app_spec
        self.settings = dict(settings or {})
        self.call = call
        self.directory = directory or os.getcwd()

    def to_options(self) -> dict[str, str]:
        """The registry values (all strings) that :meth:`from_options` reads back."""
        return {
            "App": self.app_spec,
            "Call": "1" if self.call else "0",
            "Directory": self.directory,
            "Settings": json.dumps(self.settings, sort_keys=True),
        }

    @classmethod
    def from_options(cls, get: Callable[[str], Any]) -> ServiceConfig:
        """Read a config back; ``get(name)`` returns a stored value or None.

        Raises ``ValueError`` when the service was installed without an application.
        """
        app_spec = get("App")
        if not app_spec:
            raise ValueError("the service has no application: install it again with --app")
        return cls(
            str(app_spec),
            json.loads(get("Settings") or "{}"),
            call=str(get("Call") or "0") == "1",
            directory=get("Directory"),
        )

    def runner(self) -> ServiceRunner:
        return ServiceRunner(self.app_spec, self.settings, call=self.call)


# --------------------------------------------------------------------------- the command line

_COMMANDS = ("install", "update", "remove", "start", "stop", "restart", "debug")
# pywin32's HandleCommandLine options, passed through unchanged: name -> (metavar, help);
# a metavar of None marks a flag.
_PYWIN32_OPTIONS: dict[str, tuple[Optional[str], str]] = {
    "startup": ("MODE", "install/update: manual (the default), auto, delayed or disabled"),
    "username": ("DOMAIN\\USER", "install/update: the account the service runs as"),
    "password": ("PASSWORD", "install/update: that account's password"),
    "interactive": (None, "install/update: let the service interact with the desktop"),
    "perfmonini": ("FILE", "install/update: performance monitor registration file"),
    "perfmondll": ("FILE", "install/update: performance monitor data DLL"),
    "wait": ("SECONDS", "start/stop: wait this long for the service to reach the new state"),
}


class _CommandLineError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _CommandLineError(message)


class ServiceCommand:
    """A parsed service command line: what to tell pywin32, and what to store."""

    def __init__(
        self,
        command: str,
        arguments: list[str],
        service_name: str,
        display_name: str,
        config: Optional[ServiceConfig],
        pywin32_options: list[str],
    ) -> None:
        self.command = command
        self.arguments = arguments
        self.service_name = service_name
        self.display_name = display_name
        self.config = config  # only for install and update
        self.pywin32_options = pywin32_options

    def pywin32_argv(self, program: str) -> list[str]:
        """The argv for ``win32serviceutil.HandleCommandLine``."""
        return [program, *self.pywin32_options, self.command, *self.arguments]


def build_parser() -> argparse.ArgumentParser:
    """The service command's parser: service options, every setting, pywin32's options."""
    from .cli import add_setting_option
    from .config import SETTINGS, TOPICS

    parser = _Parser(
        prog="python -m waitress_like.winservice",
        usage="%(prog)s [OPTIONS] {" + ",".join(_COMMANDS) + "} [ARGS...]",
        description="Install, update, remove, start, stop or debug a Windows service that "
        "serves a WSGI application with waitress_like (needs pywin32: "
        "pip install waitress_like[windows]).",
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,
    )
    parser.add_argument("command", choices=_COMMANDS, help="what to do with the service")
    parser.add_argument(
        "arguments", nargs="*", metavar="ARGS", help="arguments passed to the service by start/restart/debug"
    )
    service = parser.add_argument_group("Service")
    service.add_argument(
        "--service-name",
        default=DEFAULT_SERVICE_NAME,
        metavar="NAME",
        help="the service's name, for every command (default: %(default)s)",
    )
    service.add_argument("--display-name", metavar="TEXT", help="the name shown in the Services console")
    service.add_argument(
        "--app", metavar="MODULE:OBJECT|FILE.ini", help="the application; required by install and update"
    )
    service.add_argument(
        "--call", action="store_true", default=False, help="call OBJECT to get the application"
    )
    service.add_argument(
        "--directory", metavar="DIR", help="working directory of the service (default: the current one)"
    )
    pywin32 = parser.add_argument_group("pywin32 options, passed on to win32serviceutil.HandleCommandLine")
    for name, (metavar, help_text) in _PYWIN32_OPTIONS.items():
        if metavar is None:
            pywin32.add_argument(f"--{name}", dest=f"pywin32_{name}", action="store_true", help=help_text)
        else:
            pywin32.add_argument(f"--{name}", dest=f"pywin32_{name}", metavar=metavar, help=help_text)
    groups = {topic: parser.add_argument_group(f"{title} settings") for topic, title in TOPICS.items()}
    for setting in SETTINGS:
        if setting.accepts_text:
            add_setting_option(groups[setting.topic], setting)
    return parser


def parse_command(argv: Sequence[str]) -> ServiceCommand:
    """Parse a service command line; raises ``ValueError`` with a one-line reason."""
    from .cli import settings_given, validate_settings

    try:
        options = build_parser().parse_args(list(argv))
    except _CommandLineError as error:
        raise ValueError(str(error)) from None
    pywin32_options = []
    for name, (metavar, _help) in _PYWIN32_OPTIONS.items():
        value = getattr(options, f"pywin32_{name}", None)
        if metavar is not None and value is not None:
            pywin32_options.append(f"--{name}={value}")
        elif metavar is None and value:
            pywin32_options.append(f"--{name}")
    config = None
    if options.command in ("install", "update"):
        app_spec = getattr(options, "app", None)
        if not app_spec:
            raise ValueError(
                f"{options.command} needs the application: --app MODULE:OBJECT or --app FILE.ini"
            )
        given = settings_given(options)
        validate_settings(given)  # a bad value fails here, not when the service starts
        config = ServiceConfig(
            app_spec,
            given,
            call=options.call,
            directory=os.path.abspath(getattr(options, "directory", None) or os.getcwd()),
        )
    return ServiceCommand(
        options.command,
        list(getattr(options, "arguments", [])),
        options.service_name,
        getattr(options, "display_name", None) or f"{DEFAULT_DISPLAY_NAME} ({options.service_name})",
        config,
        pywin32_options,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m waitress_like.winservice``: returns the exit status."""
    from .cli import CLIError

    program = "waitress_like.winservice"
    try:
        command = parse_command(sys.argv[1:] if argv is None else argv)
    except (ValueError, CLIError) as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        return 2
    try:
        service_class = _service_class()
        import win32serviceutil
    except ImportError:
        print(
            f"{program}: error: Windows services need Windows and pywin32 (pip install waitress_like[windows])",
            file=sys.stderr,
        )
        return 1
    named_class = type(
        "WaitressLikeService",
        (service_class,),
        {"_svc_name_": command.service_name, "_svc_display_name_": command.display_name},
    )

    def store_config(_options: Any) -> None:
        assert command.config is not None
        for key, value in command.config.to_options().items():
            win32serviceutil.SetServiceCustomOption(command.service_name, key, value)

    status = win32serviceutil.HandleCommandLine(
        named_class,
        serviceClassString=_SERVICE_CLASS_STRING,
        argv=command.pywin32_argv(program),
        customOptionHandler=store_config if command.config is not None else None,
    )
    return int(status or 0)


# --------------------------------------------------------------------------- pywin32 glue

_built_class: Optional[type] = None


def _service_class() -> type:
    """The pywin32 service class, built on first use (raises ImportError without pywin32)."""
    global _built_class
    if _built_class is not None:
        return _built_class
    import servicemanager
    import win32service
    import win32serviceutil

    class WaitressLikeService(win32serviceutil.ServiceFramework):
        """A service control manager's view of one :class:`ServiceRunner`."""

        _svc_name_ = DEFAULT_SERVICE_NAME
        _svc_display_name_ = DEFAULT_DISPLAY_NAME
        _svc_description_ = "Serves a WSGI application with waitress_like."

        def __init__(self, args: Sequence[str]) -> None:
            self._svc_name_ = args[0]  # the name it was installed under
            super().__init__(args)
            self._config = ServiceConfig.from_options(
                lambda key: win32serviceutil.GetServiceCustomOption(self._svc_name_, key, None)
            )
            self._runner = self._config.runner()

        def SvcRun(self) -> None:
            self.ReportServiceStatus(
                win32service.SERVICE_START_PENDING, waitHint=int(DEFAULT_START_TIMEOUT_SECONDS * 1000)
            )
            _log_to_event_log(self._svc_name_)
            os.chdir(self._config.directory)
            self._runner.start()
            if not self._runner.wait_started(DEFAULT_START_TIMEOUT_SECONDS):
                reason = self._runner.startup_error_message or "did not start in time"
                servicemanager.LogErrorMsg(f"{self._svc_name_}: cannot start: {reason}")
                self._runner.stop(STOP_MARGIN_SECONDS)
                raise RuntimeError(reason)  # pywin32 reports the service as failed
            self.ReportServiceStatus(win32service.SERVICE_RUNNING)
            self._runner.wait()
            if self._runner.startup_error is not None:
                raise RuntimeError(self._runner.startup_error_message)  # reported as failed

        def SvcStop(self) -> None:
            # Called on the control handler's thread while SvcRun waits in runner.wait().
            wait_hint = int(self._runner.stop_timeout_seconds * 1000)
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=wait_hint)
            self._runner.stop()

        SvcShutdown = SvcStop

    _built_class = WaitressLikeService
    return WaitressLikeService


def _log_to_event_log(service_name: str) -> None:
    from logging.handlers import NTEventLogHandler

    handler = NTEventLogHandler(service_name)
    handler.setLevel(logging.INFO)
    log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


def __getattr__(name: str) -> Any:
    # pythonservice.exe looks the class up by name; building it needs pywin32.
    if name == "WaitressLikeService":
        return _service_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
