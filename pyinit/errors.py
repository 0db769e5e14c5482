"""Errors a user can cause. The CLI prints them without a traceback and exits 2."""

from __future__ import annotations


class UsageError(Exception):
    """A bad command line: unknown option, missing value, no command."""
