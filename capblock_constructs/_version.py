"""The installed package's version, for ``--version``, SARIF and the validation report."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed capblock-constructs version; ``unknown`` in a source tree not installed."""
    try:
        return version("capblock-constructs")
    except PackageNotFoundError:
        return "unknown"
