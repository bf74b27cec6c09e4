"""Import the application named ``MODULE:OBJECT``: the one loader every entry point shares.

The command line, the Windows service, PasteDeploy ini files and worker processes name
the application the same way and get the same errors, so :func:`load_application` is the
only place that turns a spec into an application:

* ``MODULE:OBJECT`` (or ``MODULE.OBJECT``, as ``waitress-serve`` accepts); ``OBJECT``
  may be dotted (``myproject.wsgi:app.wsgi_app``);
* the working directory is importable, as under ``python -m``;
* with ``call_factory``, ``OBJECT`` is a factory called without arguments.

Every failure raises a subclass of :class:`AppLoadError` whose message is one line naming
the spec's module or object and what went wrong; an exception raised by the
application's own code is kept as the ``__cause__``. Nothing here prints, exits or keeps
state of its own (importing changes ``sys.path`` and ``sys.modules``, as importing does),
and the errors pickle, so a child process, including one started with the ``spawn``
method, can load the application from the spec string it was given and report back.
Any thread may call it (Python's import lock serialises imports of one module).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any, Optional

from .errors import WaitressLikeError, describe_exception

__all__ = [
    "AppAttributeError",
    "AppFactoryError",
    "AppImportError",
    "AppLoadError",
    "AppModuleNotFoundError",
    "AppNotCallableError",
    "AppSpecError",
    "load_application",
    "make_importable",
    "split_spec",
]

# A dotted Python name: what MODULE and OBJECT may look like.
_DOTTED_NAME = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*")


class AppLoadError(WaitressLikeError):
    """The application ``spec`` could not be loaded; ``message`` (also ``str()``) says why.

    Catch this base class for any failure, or a subclass for one kind of failure.
    """

    def __init__(self, spec: str, message: str) -> None:
        super().__init__(message)
        self.spec = spec
        self.message = message

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # Rebuilt from its arguments, so it crosses a process boundary intact.
        return type(self), (self.spec, self.message)


class AppSpecError(AppLoadError, ValueError):
    """The spec is not of the form ``MODULE:OBJECT``; nothing was imported."""


class AppModuleNotFoundError(AppLoadError):
    """The spec's module (or a package on its dotted path) does not exist."""


class AppImportError(AppLoadError):
    """Importing the module raised (a missing dependency, an error in its code...)."""


class AppAttributeError(AppLoadError):
    """The module was imported but has no such object."""


class AppNotCallableError(AppLoadError):
    """The object (or what its factory returned) is not callable, so not an application."""


class AppFactoryError(AppLoadError):
    """Calling the factory raised."""


def load_application(
    spec: str, *, call_factory: bool = False, working_directory: Optional[str] = None
) -> Any:
    """Import the application ``spec`` names and return it (see the module docstring).

    ``working_directory`` is the directory that counts as the current one: it is put
    first on ``sys.path`` unless it is already there (default: ``os.getcwd()``, which an
    empty ``sys.path`` entry also stands for). With ``call_factory`` the object is called
    without arguments and its result is the application. Raises :class:`AppLoadError`.
    """
    module_name, object_name = split_spec(spec)
    make_importable(working_directory)
    module = _import_module(spec, module_name)
    target: Any = module
    for part in object_name.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppAttributeError(
                spec, f"module {module_name!r} has no attribute {object_name!r}"
            ) from None
    if not callable(target):
        raise AppNotCallableError(
            spec,
            f"{module_name}:{object_name} is not callable (it is a {type(target).__name__}), "
            "so it cannot be a WSGI application",
        )
    return _call_factory(spec, module_name, object_name, target) if call_factory else target


def split_spec(spec: str) -> tuple[str, str]:
    """``"MODULE:OBJECT"`` (or ``"MODULE.OBJECT"``) -> ``(MODULE, OBJECT)``; raises
    :class:`AppSpecError` for anything else."""
    if ":" in spec:
        module_name, _, object_name = spec.partition(":")
    else:
        module_name, _, object_name = spec.rpartition(".")
    if not (_DOTTED_NAME.fullmatch(module_name) and _DOTTED_NAME.fullmatch(object_name)):
        raise AppSpecError(
            spec,
            f"the application must be named MODULE:OBJECT, e.g. myproject.wsgi:application (got {spec!r})",
        )
    return module_name, object_name


def make_importable(working_directory: Optional[str] = None) -> None:
    """Put ``working_directory`` (default: the current one) first on ``sys.path`` unless
    it is on it already. ``python -m`` does this for the current directory; a console
    script, a service or a spawned child process does not."""
    current = os.getcwd()
    directory = os.path.abspath(working_directory) if working_directory is not None else current
    if directory in sys.path or (directory == current and "" in sys.path):
        return
    sys.path.insert(0, directory)


def _import_module(spec: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only the spec's own module (or a package on its path) is "not found"; a module
        # that the application imports and that is missing is an error in the application.
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise AppModuleNotFoundError(
                spec,
                f"cannot import {module_name!r}: no module named {error.name!r} "
                "(the current directory and sys.path were searched)",
            ) from None
        raise AppImportError(
            spec, f"importing {module_name!r} failed: {describe_exception(error)}"
        ) from error
    except Exception as error:
        raise AppImportError(
            spec, f"importing {module_name!r} failed: {describe_exception(error)}"
        ) from error


def _call_factory(spec: str, module_name: str, object_name: str, factory: Any) -> Any:
    try:
        application = factory()
    except Exception as error:
        raise AppFactoryError(
            spec, f"calling {module_name}:{object_name}() failed: {describe_exception(error)}"
        ) from error
    if not callable(application):
        raise AppNotCallableError(
            spec,
            f"{module_name}:{object_name}() returned a {type(application).__name__}, not a WSGI application",
        )
    return application
