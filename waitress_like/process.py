"""The identity of the server's processes: pidfile, user and group, umask, directory, title.

The ``pidfile``, ``user``, ``group``, ``umask``, ``chdir`` and ``proc_name`` settings
apply with or without worker processes. :class:`ProcessSettings` checks them before
anything else happens (a user that does not exist, a server not started as root, a
pidfile naming a running process are errors naming the setting) and applies each at its
moment: the directory and umask before the sockets are bound, the pidfile once they are,
the user and group in each worker (or, in a single process, once the sockets are bound).

``pwd``, ``grp`` and ``setproctitle`` are imported only where needed, so the module
imports on Windows, where ``user``, ``group`` and ``umask`` are refused by the settings.

Thread contract: everything here runs on the main thread of the process it concerns.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Optional

from .config import Settings
from .errors import ConfigError

__all__ = [
    "PROCESS_SETTINGS",
    "PidFile",
    "ProcessSettings",
    "run_one_process",
    "set_process_title",
]

log = logging.getLogger("waitress_like")


#: The settings this module applies.
PROCESS_SETTINGS = ("pidfile", "proc_name", "user", "group", "umask", "chdir")


class ProcessSettings:
    """The process settings of ``settings``, checked; construction raises ConfigError."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uid: Optional[int] = None
        self.gid: Optional[int] = None
        self.user_name: Optional[str] = None
        if settings.user is not None:
            self.uid, self.gid, self.user_name = _lookup_user(settings.user)
        if settings.group is not None:
            self.gid = _lookup_group(settings.group)
        if self.uid is not None or self.gid is not None:
            _check_can_switch(self.uid, self.gid)

    def before_binding(self) -> None:
        """Change directory and umask (the unix socket and pidfile are created after)."""
        if self.settings.umask is not None:
            os.umask(self.settings.umask)
        if self.settings.chdir is not None:
            try:
                os.chdir(self.settings.chdir)
            except OSError as error:
                raise ConfigError("chdir", self.settings.chdir, error.strerror or str(error)) from None

    def switch_user(self) -> None:
        """Become ``group`` and ``user`` (group first: afterwards it is not allowed)."""
        if self.gid is not None and self.gid != os.getgid():
            os.setgid(self.gid)
        if self.uid is not None and self.uid != os.getuid():
            if self.user_name is not None:
                os.initgroups(self.user_name, self.gid if self.gid is not None else os.getgid())
            else:
                os.setgroups([])
            os.setuid(self.uid)

    @classmethod
    def from_given(cls, given: Mapping[str, Any]) -> ProcessSettings:
        """From settings as given: only the process settings are validated here."""
        return cls(Settings.from_mapping({name: given[name] for name in PROCESS_SETTINGS if name in given}))

    def chown_for_user(self, path: str) -> None:
        """Let the switched user own ``path`` (the unix socket), as gunicorn does."""
        if self.uid is not None or self.gid is not None:
            os.chown(path, -1 if self.uid is None else self.uid, -1 if self.gid is None else self.gid)


def _lookup_user(value: str) -> tuple[int, int, Optional[str]]:
    import pwd

    try:
        entry = pwd.getpwuid(int(value)) if value.isdigit() else pwd.getpwnam(value)
    except KeyError:
        if value.isdigit():  # a uid without a passwd entry is still a uid
            return int(value), os.getgid(), None
        raise ConfigError("user", value, "no such user") from None
    return entry.pw_uid, entry.pw_gid, entry.pw_name


def _lookup_group(value: str) -> int:
    import grp

    if value.isdigit():
        return int(value)
    try:
        return grp.getgrnam(value).gr_gid
    except KeyError:
        raise ConfigError("group", value, "no such group") from None


def _check_can_switch(uid: Optional[int], gid: Optional[int]) -> None:
    if os.geteuid() == 0:
        return
    if uid is not None and uid != os.getuid():
        raise ConfigError("user", uid, "only a server started as root can change user")
    if gid is not None and gid != os.getgid():
        raise ConfigError("group", gid, "only a server started as root can change group")


class PidFile:
    """Writes this process's id to ``path``; :meth:`remove` deletes it if still ours."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.pid: Optional[int] = None

    def create(self, pid: int) -> None:
        """Write ``pid``; ConfigError if the file names another process that runs."""
        other = _read_pid(self.path)
        if other is not None and other != pid and _is_running(other):
            raise ConfigError("pidfile", self.path, f"it names process {other}, which is running")
        temporary = f"{self.path}.{pid}.tmp"
        try:
            with open(temporary, "w", encoding="ascii") as handle:
                handle.write(f"{pid}\n")
            os.replace(temporary, self.path)
        except OSError as error:
            _remove_quietly(temporary)
            raise ConfigError("pidfile", self.path, error.strerror or str(error)) from None
        self.pid = pid

    def remove(self) -> None:
        if self.pid is not None and _read_pid(self.path) == self.pid:
            _remove_quietly(self.path)
        self.pid = None


def _read_pid(path: str) -> Optional[int]:
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _is_running(pid: int) -> bool:
    if os.name == "nt":
        return True  # no cheap check: a stale file must be removed by hand
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


_title_warned = False


def set_process_title(role: str, settings: Settings, default_name: str) -> None:
    """``waitress_like: ROLE [NAME]`` as the process title, when setproctitle is installed.

    Without it, a ``proc_name`` given explicitly gets one warning; the default is silent.
    """
    global _title_warned
    try:
        import setproctitle
    except ImportError:
        if settings.proc_name and not _title_warned:
            _title_warned = True
            log.warning("proc_name is set but setproctitle is not installed; process titles unchanged")
        return
    setproctitle.setproctitle(f"waitress_like: {role} [{settings.proc_name or default_name}]")


def run_one_process(app: Any, given: Mapping[str, Any], *, log_listen: bool = True) -> bool:
    """Serve in this process (no workers), the process settings applied at their moments;
    True if the drain at the end was clean. ``app`` may be ``MODULE:OBJECT``.

    Raises ConfigError, BindError, AppLoadError, and what the server raises.
    """
    from .importer import load_application
    from .server import create_server, run_until_signalled

    process = ProcessSettings.from_given(given)
    process.before_binding()
    if isinstance(app, str):
        app = load_application(app)
    server = create_server(app, **given)
    pidfile = PidFile(process.settings.pidfile) if process.settings.pidfile else None
    try:
        for listener in server.listeners:
            if listener.unix_path:
                process.chown_for_user(listener.unix_path)
        if pidfile is not None:
            pidfile.create(os.getpid())
        process.switch_user()
        set_process_title("server", process.settings, getattr(app, "__name__", "waitress_like"))
        if log_listen:
            server.print_listen("Serving on {}")
        try:
            return run_until_signalled(server)
        except KeyboardInterrupt:
            return server.drained_cleanly
    finally:
        server.close()
        if pidfile is not None:
            pidfile.remove()
