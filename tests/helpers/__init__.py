"""The shared test library, and the child scripts the tests run.

Library modules (import them as ``from tests.helpers.X import ...``):

- ``cli``: run the real CLI as PID 1 of a fresh PID namespace (``Runner``, ``Proc``).
- ``deadlines``: read lines from pipes and wait for files or states, with deadlines.
- ``commands``: ``sh -c`` argv, services.yaml ``command:`` values, the recorder.
- ``supervisor``: write a services.yaml, start ``pyinit -c``, status and clients.
- ``procs``: /proc, process trees, zombies in a namespace.
- ``net``: free ports, notify datagrams. ``promtext``: a Prometheus text parser.
- ``snapshots``: status snapshots built by hand.

Child scripts, run as ``python tests/helpers/NAME.py`` (``cli.helper(NAME)``):
recorder.py (signals), orphans.py and leftover.py (reaping), sdnotify.py,
gated.py (readiness sources).
"""
