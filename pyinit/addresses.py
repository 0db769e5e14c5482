"""Listening addresses as users write them: ``[host]:port``.

Below config and httpd: config validates ``settings.http`` with it, httpd binds it,
the CLI checks ``--http``; none of them needs the others for that.
"""

from __future__ import annotations


def parse_address(text: str) -> tuple[str, int]:
    """``[host]:port`` -> (host, port); host ``""`` means every interface.

    Accepts ``:9000``, ``127.0.0.1:9000``, ``localhost:9000``, ``[::1]:9000`` and
    ``[::]:9000``. Raises ValueError with a message for the user.
    """
    raw = text.strip()
    example = "expected [host]:port such as ':9000', '127.0.0.1:9000' or '[::1]:9000'"
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0 or raw[close + 1 : close + 2] != ":":
            raise ValueError(f"{example}; got {text!r}")
        host, port_text = raw[1:close], raw[close + 2 :]
        if not host:
            raise ValueError(f"{example}; got {text!r} (empty IPv6 address)")
    else:
        host, sep, port_text = raw.rpartition(":")
        if not sep:
            hint = f" (did you mean ':{raw}'?)" if raw.isdigit() else ""
            raise ValueError(f"{example}; got {text!r}{hint}")
        if ":" in host:
            raise ValueError(f"{example}; got {text!r} (write an IPv6 address in brackets)")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535; got {port_text!r}")
    if any(c.isspace() for c in host):
        raise ValueError(f"{example}; got {text!r}")
    return host, int(port_text)
