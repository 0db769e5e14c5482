"""Unit tests for ``settings.http`` in services.yaml: the accepted address forms and
the problems (with file:line and key) for the rest."""

from __future__ import annotations

import textwrap

import pytest

from pyinit.config import ConfigError, load_config_text

SERVICES = "services:\n  web:\n    command: [web]\n"


def http_setting(value: str, environ: dict[str, str] | None = None) -> str | None:
    text = f"settings:\n  http: {value}\n" + SERVICES
    return load_config_text(text, "services.yaml", environ or {}).settings.http


def problems(value: str) -> list[str]:
    text = f"settings:\n  http: {value}\n" + SERVICES
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "services.yaml", {})
    return [str(p) for p in info.value.problems]


def test_http_is_off_by_default() -> None:
    """No settings.http: no HTTP server."""
    config = load_config_text(SERVICES, "services.yaml", {})
    assert config.settings.http is None


@pytest.mark.parametrize(
    "value",
    ['":9000"', ":9000", "127.0.0.1:9000", '"[::1]:9000"', "localhost:8080", "'[::]:1'"],
)
def test_http_accepts_host_port(value: str) -> None:
    """[host]:port, quoted or not, is kept as written."""
    assert http_setting(value) == value.strip("'\"")


def test_http_null_or_empty_is_off() -> None:
    """``http: ~`` and an empty interpolation (``${PYINIT_HTTP:-}``) leave it off, so
    one file can switch it on from the environment."""
    assert http_setting("~") is None
    assert http_setting('"${PYINIT_HTTP:-}"') is None
    assert http_setting('"${PYINIT_HTTP:-}"', {"PYINIT_HTTP": ":9100"}) == ":9100"


def test_http_keeps_the_other_settings() -> None:
    """settings.http next to the other settings does not disturb them."""
    text = "settings:\n  shutdown_timeout: 5s\n  http: ':9000'\n  log_format: json\n" + SERVICES
    settings = load_config_text(text, "services.yaml", {}).settings
    assert (settings.shutdown_timeout, settings.log_format, settings.http) == (5.0, "json", ":9000")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "9000",
            "expected [host]:port such as ':9000', '127.0.0.1:9000' or '[::1]:9000'; "
            "got '9000' (did you mean ':9000'?)",
        ),
        ('":0"', "the port must be a number from 1 to 65535; got '0'"),
        ('":99999"', "the port must be a number from 1 to 65535; got '99999'"),
        ('"::1:9000"', "(write an IPv6 address in brackets)"),
        ("[9000]", "expected an address such as ':9000'"),
    ],
)
def test_http_problems_name_file_line_and_key(value: str, message: str) -> None:
    """A bad address is one problem at services.yaml:2, key settings.http."""
    found = problems(value)
    assert len(found) == 1
    assert found[0].startswith("services.yaml:2: settings.http: ")
    assert message in found[0]


def test_http_typo_suggests_the_key() -> None:
    """An unknown settings key close to 'http' gets a did-you-mean."""
    text = textwrap.dedent(
        """\
        settings:
          htp: ":9000"
        """
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text + SERVICES, "services.yaml", {})
    assert "did you mean 'http'?" in str(info.value)
