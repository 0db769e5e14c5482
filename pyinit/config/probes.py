"""``healthcheck`` (liveness) and ``ready`` (readiness), and the probes they run:
exec (Compose's ``test`` too), tcp and http."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import replace
from typing import Literal

import yaml

from pyinit.config.model import HealthCheck, Probe, Readiness
from pyinit.config.nodes import Entries, Reader, is_null

PROBE_KEYS = ("tcp", "http", "exec")
HEALTHCHECK_KEYS = (
    "test",
    *PROBE_KEYS,
    "expect_status",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
)
READY_SOURCES = ("notify", "log_line", "fd", *PROBE_KEYS)
READY_KEYS = (*READY_SOURCES, "watchdog", "expect_status", "interval", "probe_timeout", "timeout")
_TCP_WHAT = "a port number or host:port"
_URL_WHAT = "a URL such as http://127.0.0.1:8000/health"
_DIGITS = re.compile(r"[0-9]+\Z")
_HOST = re.compile(r"[^\s/\[\]]*\Z")  # empty: the default, 127.0.0.1

# -- healthcheck -------------------------------------------------------------------------


def healthcheck(r: Reader, knode: yaml.Node, vnode: yaml.Node, key: str) -> HealthCheck | None:
    """Compose's healthcheck; None when disabled (``test: [NONE]``, ``disable: true``)
    and, after reporting, when invalid: the caller tells them apart by the problems."""
    entries = r.mapping(vnode, key, "a mapping such as {test: [CMD, ...], interval: 10s}")
    if entries is None:
        return None
    typo = r.check_keys(entries, HEALTHCHECK_KEYS, key)
    timing = _health_timing(r, entries, key)
    sources = [name for name in ("test", *PROBE_KEYS) if name in entries]
    if "disable" in entries and _disabled(r, entries, key, sources):
        return None
    source = one_source(
        r,
        knode,
        key,
        entries,
        sources,
        "probe",
        "test (as in Compose) or one of tcp, http, exec",
        typo,
    )
    probe: Probe | None = None
    if source == "test":
        test = compose_test(r, entries["test"][1], f"{key}.test")
        if test == "none":
            return None
        probe = test
    elif source is not None:
        probe = read_probe(r, source, entries[source][1], f"{key}.{source}")
    probe = expect_status(r, entries, key, probe, source)
    if probe is None or any(v is None for v in timing.values()):
        return None
    return HealthCheck(probe, **timing)  # type: ignore[arg-type]


def _health_timing(r: Reader, entries: Entries, key: str) -> dict[str, float | int | None]:
    timing: dict[str, float | int | None] = {}
    for name in ("interval", "timeout", "start_interval"):
        if name in entries:
            timing[name] = r.positive_duration(entries[name][1], f"{key}.{name}")
    if "start_period" in entries:
        timing["start_period"] = r.duration(entries["start_period"][1], f"{key}.start_period")
    if "retries" in entries:
        timing["retries"] = r.whole_number(
            entries["retries"][1], f"{key}.retries", 1, None, "a whole number >= 1"
        )
    return timing


def _disabled(r: Reader, entries: Entries, key: str, sources: list[str]) -> bool:
    """Whether ``disable`` ends the reading: it is true (a probe beside it is a
    problem), or not a boolean (reported)."""
    disable = r.boolean(entries["disable"][1], f"{key}.disable")
    if disable and sources:
        r.add(
            entries["disable"][0],
            f"{key}.disable",
            f"disable: true turns the healthcheck off, yet it has a probe "
            f"({sources[0]}); remove one of them",
        )
    return disable is not False


def one_source(
    r: Reader,
    knode: yaml.Node,
    key: str,
    entries: Entries,
    sources: list[str],
    what: str,
    choices: str,
    typo: bool,
) -> str | None:
    """The one source among ``sources`` (present keys); report none or several.
    None without a word when an unknown key was reported: likely the misspelt
    source, whose did-you-mean says it all."""
    if not sources:
        if not typo:
            r.add(knode, key, f"no {what}: set {choices}")
        return None
    if len(sources) > 1:
        r.add(
            entries[sources[1]][0],
            key,
            f"more than one {what} ({', '.join(sources)}); keep one",
        )
        return None
    return sources[0]


# -- probes ------------------------------------------------------------------------------


def compose_test(r: Reader, node: yaml.Node, key: str) -> Probe | Literal["none"] | None:
    """Compose's ``test``: [CMD, arg...], [CMD-SHELL, command], [NONE] or a string
    (= CMD-SHELL)."""
    what = "a list such as [CMD, arg, ...] or a shell command string"
    if isinstance(node, yaml.ScalarNode):
        text = r.text(node, key, what)
        if text is None:
            return None
        if not text.strip():
            r.add(node, key, "the command is empty")
            return None
        return Probe("exec", ("/bin/sh", "-c", text))
    if not isinstance(node, yaml.SequenceNode):
        r.expected(node, key, what)
        return None
    words = [r.text(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
    if any(w is None for w in words):
        return None
    args = [w for w in words if w is not None]
    if not args:
        r.add(
            node,
            key,
            "the list is empty; expected [CMD, arg, ...], [CMD-SHELL, command] or [NONE]",
        )
        return None
    return _test_words(r, node, key, args[0], args[1:])


def _test_words(
    r: Reader, node: yaml.SequenceNode, key: str, head: str, rest: list[str]
) -> Probe | Literal["none"] | None:
    if head == "NONE":
        if rest:
            r.add(node, key, "NONE disables the healthcheck and takes nothing after it")
            return None
        return "none"
    if head == "CMD":
        if not rest or not rest[0]:
            r.add(node, key, "CMD needs a command after it, as in [CMD, pg_isready]")
            return None
        return Probe("exec", tuple(rest))
    if head == "CMD-SHELL":
        if len(rest) != 1 or not rest[0].strip():
            r.add(
                node,
                key,
                "CMD-SHELL takes exactly one string, the shell command; for separate "
                "arguments use CMD",
            )
            return None
        return Probe("exec", ("/bin/sh", "-c", rest[0]))
    r.add(
        node.value[0],
        f"{key}[0]",
        f"expected CMD, CMD-SHELL or NONE first (as in Compose); got {head!r}",
    )
    return None


def read_probe(r: Reader, kind: str, node: yaml.Node, key: str) -> Probe | None:
    if kind == "tcp":
        return tcp_probe(r, node, key)
    if kind == "http":
        return http_probe(r, node, key)
    command = r.command(node, key)
    return None if command is None else Probe("exec", command)


def tcp_probe(r: Reader, node: yaml.Node, key: str) -> Probe | None:
    """``6379`` or ``"host:port"`` (IPv6 in brackets: ``"[::1]:6379"``)."""
    text = r.text(node, key, _TCP_WHAT)
    if text is None:
        return None
    text = text.strip()
    host, port_text = "", text
    if not _DIGITS.match(text):
        host, sep, port_text = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            r.add(node, key, f"write an IPv6 address in brackets, as in [::1]:6379; got {text!r}")
            return None
        if not sep or not _DIGITS.match(port_text) or not _HOST.match(host):
            r.add(node, key, f"expected {_TCP_WHAT}; got {text!r}")
            return None
    port = int(port_text) if len(port_text) <= 20 else 0  # int() refuses 4300+ digits
    if not 1 <= port <= 65535:
        r.add(node, key, f"port {port_text.lstrip('0') or '0'} is out of range 1-65535")
        return None
    return Probe("tcp", host=host or "127.0.0.1", port=port)


def http_probe(r: Reader, node: yaml.Node, key: str) -> Probe | None:
    """A full ``http://host[:port]/path`` URL; https is not spoken."""
    text = r.text(node, key, _URL_WHAT)
    if text is None:
        return None
    url = text.strip()
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        r.add(node, key, f"expected {_URL_WHAT} with a port 1-65535; got {text!r}")
        return None
    if parts.scheme == "https":
        r.add(
            node,
            key,
            "https is not supported: the http probe speaks plain HTTP only; probe a "
            "plain-HTTP port, or use exec with a client such as curl -f https://...",
        )
    elif parts.scheme != "http" or not parts.hostname:
        r.add(node, key, f"expected {_URL_WHAT}; got {text!r}")
    elif any(c.isspace() for c in url):
        r.add(node, key, f"a URL cannot contain spaces (write %20); got {text!r}")
    elif port == 0:
        r.add(node, key, f"port 0 is out of range 1-65535 in {text!r}")
    else:
        return Probe("http", url=url)
    return None


def expect_status(
    r: Reader, entries: Entries, key: str, probe: Probe | None, source: str | None
) -> Probe | None:
    """``probe`` with the optional ``expect_status`` applied; it needs an http probe."""
    if "expect_status" not in entries:
        return probe
    knode, vnode = entries["expect_status"]
    status = r.whole_number(vnode, f"{key}.expect_status", 100, 599, "an HTTP status code 100-599")
    if source is not None and source != "http":
        r.add(knode, f"{key}.expect_status", f"applies only to an http probe, not to {source}")
        return None
    if probe is None or status is None:
        return None
    return replace(probe, expect_status=status)


# -- ready -------------------------------------------------------------------------------


def ready(r: Reader, knode: yaml.Node, vnode: yaml.Node, key: str) -> Readiness | None:
    what = "a mapping such as {tcp: 6379} or {log_line: regex}, or notify"
    if isinstance(vnode, yaml.ScalarNode) and not is_null(vnode):
        scalar = r.scalar(vnode, key)
        if scalar is None:
            return None
        if scalar.value == "notify":
            return Readiness("notify")
        r.expected(vnode, key, what, scalar)
        return None
    entries = r.mapping(vnode, key, what)
    if entries is None:
        return None
    typo = r.check_keys(entries, READY_KEYS, key)
    before = len(r.problems)
    # notify: false is no source at all (handy with ${NOTIFY:-false}); an invalid
    # value counts as one, so that its problem is the only one reported.
    notify = "notify" in entries and (r.boolean(entries["notify"][1], f"{key}.notify") is not False)
    sources = [n for n in READY_SOURCES if n in entries and (n != "notify" or notify)]
    source = one_source(
        r,
        knode,
        key,
        entries,
        sources,
        "readiness source",
        "one of " + ", ".join(READY_SOURCES),
        typo,
    )
    fields = _ready_timing(r, entries, key, source)
    probe = _ready_source(r, entries, key, source, fields)
    probe = expect_status(r, entries, key, probe, source)
    if source is None or len(r.problems) > before:
        return None
    kind = "probe" if source in PROBE_KEYS else source
    return Readiness(kind, probe=probe, **fields)  # type: ignore[arg-type]


def _ready_timing(r: Reader, entries: Entries, key: str, source: str | None) -> dict[str, object]:
    """timeout, and watchdog, interval and probe_timeout where ``source`` takes them."""
    fields: dict[str, object] = {}
    if "timeout" in entries:
        fields["timeout"] = r.duration(entries["timeout"][1], f"{key}.timeout")
    if "watchdog" in entries:
        wknode, wvnode = entries["watchdog"]
        fields["watchdog"] = r.duration(wvnode, f"{key}.watchdog")
        if source is not None and source != "notify":
            r.add(
                wknode,
                f"{key}.watchdog",
                f"applies only to notify: true (WATCHDOG=1 comes over $NOTIFY_SOCKET), "
                f"not to {source}",
            )
    for name in ("interval", "probe_timeout"):
        if name in entries:
            fields[name] = r.positive_duration(entries[name][1], f"{key}.{name}")
            if source is not None and source not in PROBE_KEYS:
                r.add(
                    entries[name][0],
                    f"{key}.{name}",
                    f"applies only to a probe (tcp, http or exec), not to {source}",
                )
    return fields


def _ready_source(
    r: Reader, entries: Entries, key: str, source: str | None, fields: dict[str, object]
) -> Probe | None:
    """Reads the source's value: into ``fields`` (pattern, fd) or as the probe."""
    if source == "log_line":
        fields["pattern"] = regex(r, entries["log_line"][1], f"{key}.log_line")
    elif source == "fd":
        fields["fd"] = r.whole_number(
            entries["fd"][1],
            f"{key}.fd",
            3,
            255,
            "a file descriptor 3-255 (0-2 are stdin, stdout and stderr)",
        )
    elif source in PROBE_KEYS:
        assert source is not None
        return read_probe(r, source, entries[source][1], f"{key}.{source}")
    return None


def regex(r: Reader, node: yaml.Node, key: str) -> str | None:
    text = r.text(node, key, "a regular expression")
    if text is None:
        return None
    if not text:
        r.add(node, key, "the pattern is empty; it would match any line")
        return None
    try:
        re.compile(text)
    except re.error as e:
        where = f" at position {e.pos}" if e.pos is not None else ""
        r.add(node, key, f"invalid regular expression {text!r}: {e.msg}{where}")
        return None
    return text
