"""Supervisor mode, in parts: ``core`` (run loop, signal intake, reap routing,
reconcile), ``conditions`` (pure: dependency conditions, the main-command gate),
``shutdown`` (the phase table), ``actions`` (operator requests, reload application),
``launch`` (services and the main command), ``status`` (the snapshot and status file),
``seams`` (clock, launcher, signal sender, reaper: fakes in unit tests)."""

from pyinit.supervisor.core import Supervisor

__all__ = ["Supervisor"]
