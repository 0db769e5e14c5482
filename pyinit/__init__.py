"""pyinit: a PID 1 init and process supervisor for containers."""

__version__ = "0.1.0"
