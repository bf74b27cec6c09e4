"""A config file with every hook: each appends one JSON line to $HOOK_LOG.

Used by test_hooks.py as ``-c tests/workers/hooks_conf.py``.
"""

import json
import logging
import os

workers = 2
graceful_timeout = 5
_LOG = os.environ["HOOK_LOG"]


def _record(hook, **fields):
    with open(_LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"hook": hook, "pid": os.getpid(), **fields}) + "\n")


def on_starting(server):
    _record("on_starting", server_pid=server.pid)


def on_reload(server):
    _record("on_reload")


def when_ready(server):
    _record("when_ready", workers=server.num_workers)


def pre_fork(server, worker):
    _record("pre_fork", age=worker.age, worker_pid=worker.pid)


def post_fork(server, worker):
    _record("post_fork", age=worker.age, server_pid=server.pid)


def post_worker_init(worker):
    _record("post_worker_init", age=worker.age, has_server=worker.server is not None)
    # A plain FileHandler (not a WatchedFileHandler): only SIGUSR1 makes it reopen.
    handler = logging.FileHandler(os.environ["REQUEST_LOG"])
    logging.getLogger("tests.requests").addHandler(handler)
    logging.getLogger("tests.requests").setLevel(logging.INFO)


def worker_int(worker):
    _record("worker_int", age=worker.age)


def worker_abort(worker):
    _record("worker_abort", age=worker.age)


def pre_request(worker, req):
    _record("pre_request", method=req.method, path=req.path, query=req.query)
    logging.getLogger("tests.requests").info("%s %s", req.method, req.uri)
    if req.query == "raise":
        raise RuntimeError("pre_request fails on purpose")


def post_request(worker, req, environ, resp):
    _record("post_request", path=req.path, status=resp.status_code, environ=environ["PATH_INFO"])


def child_exit(server, worker):
    _record("child_exit", age=worker.age, worker_pid=worker.pid)


def worker_exit(server, worker):
    _record("worker_exit", age=worker.age, server_pid=server.pid)


def nworkers_changed(server, new_value, old_value):
    _record("nworkers_changed", new=new_value, old=old_value)


def on_exit(server):
    _record("on_exit")
