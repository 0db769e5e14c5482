"""Wrapper mode: PID 1 for one command. Reap, forward, then exit with its status.

options: what to run and how (each personality fills it in), the stderr trace.
core: the Wrapper itself, its sigwaitinfo loop and what each signal does.
"""

from pyinit.wrapper.core import Wrapper
from pyinit.wrapper.options import WrapperOptions

__all__ = ["Wrapper", "WrapperOptions"]
