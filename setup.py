"""Packaging for waitress_like (setuptools)."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))


def read(*parts):
    with open(os.path.join(HERE, *parts), encoding="utf-8") as handle:
        return handle.read()


# The modules a compiled build turns into C extensions with mypyc (the same source; see
# docs/quickstart.rst). Pure Python is the default, and the fallback wherever they are absent.
COMPILED_MODULES = [
    "waitress_like/protocol/request.py",
    "waitress_like/protocol/response.py",
    "waitress_like/protocol/writer.py",
    "waitress_like/wsgi.py",
    "waitress_like/channel.py",
]


def compiled_extensions():
    """mypyc's extensions when WAITRESS_LIKE_COMPILE=1 (mypy must be importable)."""
    if os.environ.get("WAITRESS_LIKE_COMPILE") != "1":
        return []
    from mypyc.build import mypycify

    return mypycify(COMPILED_MODULES, opt_level="3")


VERSION = re.search(r'^__version__ = "([^"]+)"', read("waitress_like", "__init__.py"), re.M).group(1)

TEST_EXTRAS = [
    "pytest>=7",
    "pytest-timeout",
    "hypothesis",
    "WebTest",
    "requests",
    "PasteDeploy",
    "Flask",
    "Django",
    "pyramid",
    "falcon",
    "starlette",
    "fastapi",
    "python-multipart",
    "trustme",
    "prometheus_client",
    "websockets",
    "setproctitle",
    "mypy",  # mypyc, for tests/test_compiled.py
]

setup(
    name="waitress_like",
    version=VERSION,
    description="A pure-Python WSGI server: a faster, stricter drop-in for waitress",
    long_description=read("README.md"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["waitress_like", "waitress_like.*"]),
    package_data={"waitress_like": ["py.typed"]},
    ext_modules=compiled_extensions(),
    python_requires=">=3.9",
    install_requires=[],
    extras_require={
        "test": TEST_EXTRAS,
        "paste": ["PasteDeploy"],
        "reload": ["watchfiles"],
        "setproctitle": ["setproctitle"],
        "windows": ['pywin32; sys_platform == "win32"'],
        "docs": ["Sphinx"],
        "lint": ["ruff", "mypy"],
    },
    entry_points={
        "console_scripts": ["waitress-like-serve = waitress_like.cli:main"],
        "paste.server_runner": ["main = waitress_like.paste:serve_paste"],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: MIT License",
        "Operating System :: POSIX",
        "Operating System :: Microsoft :: Windows",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Server",
    ],
)
