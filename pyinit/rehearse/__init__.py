"""``pyinit rehearse``: a stop rehearsal. Run the app as pyinit would (or as PID 1
with no init), send the stop signal ``docker stop`` would, and report how it
ended. Imported only by this subcommand, never on wrapper mode's start-up path.

Modules: options (command line), probe (signal masks from /proc), pidns
(``--as-pid1``), runner (one rehearsal on the event loop), facts (what was seen,
the verdict), report (text and JSON).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from pyinit.errors import UsageError

if TYPE_CHECKING:
    from pyinit.rehearse.facts import RunFacts
    from pyinit.rehearse.options import RehearseOptions


def rehearse_main(args: list[str]) -> int:
    from pyinit.rehearse.facts import passed

    opts = _options(args)
    if isinstance(opts, int):
        return opts
    runs = _rehearse(opts)
    if isinstance(runs, int):
        return runs
    _write_report(opts, runs)
    return 0 if all(passed(r) for r in runs) else 1


def _options(args: list[str]) -> RehearseOptions | int:
    """The options, or the exit code of a --help or a usage error."""
    from pyinit.rehearse.options import USAGE, HelpRequested, parse_options

    try:
        opts = parse_options(args)
    except HelpRequested:
        sys.stdout.write(USAGE)
        return 0
    except UsageError as exc:
        sys.stderr.write(
            f"pyinit rehearse: {exc}\nTry 'pyinit rehearse --help' for more information.\n"
        )
        return 2
    if opts.as_pid1 and opts.repeat > 1 and os.geteuid() != 0:
        # Unprivileged, a process can point its children at a new PID namespace
        # once: setns back to its own, to make the next, needs root.
        sys.stderr.write("pyinit rehearse: --as-pid1 --repeat needs root (or use --repeat 1)\n")
        return 2
    return opts


def _rehearse(opts: RehearseOptions) -> list[RunFacts] | int:
    """Every rehearsal's facts, or the exit code of one that could not run."""
    from pyinit.reaper import become_subreaper
    from pyinit.rehearse.pidns import NamespaceUnavailable, PidNamespaces
    from pyinit.rehearse.runner import Interrupted, Rehearsal
    from pyinit.spawn import SpawnError

    namespaces = PidNamespaces() if opts.as_pid1 else None
    if namespaces is None:
        try:
            # Orphaned workers come back to us, to be watched and killed.
            become_subreaper()
        except OSError as exc:
            sys.stderr.write(f"pyinit rehearse: cannot become a child subreaper: {exc}\n")
    runs: list[RunFacts] = []
    try:
        for _ in range(opts.repeat):
            runs.append(Rehearsal(opts, namespaces).run())
    except SpawnError as exc:
        sys.stderr.write(f"pyinit rehearse: {exc}\n")
        return exc.exit_code
    except NamespaceUnavailable as exc:
        sys.stderr.write(f"pyinit rehearse: --as-pid1: {exc}\n")
        return 2
    except Interrupted as exc:
        sys.stderr.write("pyinit rehearse: interrupted; the app was killed\n")
        return 128 + exc.signum
    finally:
        if namespaces is not None:
            namespaces.close()
    return runs


def _write_report(opts: RehearseOptions, runs: list[RunFacts]) -> None:
    from pyinit.rehearse.report import json_facts, repeat_json, repeat_text, text_report

    if opts.json:
        data = json_facts(runs[0]) if len(runs) == 1 else repeat_json(runs)
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(text_report(runs[0]) if len(runs) == 1 else repeat_text(runs))
    sys.stdout.flush()


__all__ = ["rehearse_main"]
