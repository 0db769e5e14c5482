"""Unit tests for non-root checks and the hardening keys of services.yaml: `user:`
needs root (the uid is injected, so both cases run without root), `no_new_privs`,
`umask`, `ulimits`, and environment values kept out of every problem message."""

from __future__ import annotations

import textwrap

import pytest

from pyinit.check import summary
from pyinit.config import Config, ConfigError, load_config_text, user_switch_problem

OPENSHIFT = (1000870000, 0)


def load(text: str, ids: tuple[int, int] = (0, 0), environ: dict[str, str] | None = None) -> Config:
    return load_config_text(textwrap.dedent(text), "services.yaml", environ or {}, ids=ids)


def problems(text: str, ids: tuple[int, int] = (0, 0), **kwargs: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, ids, **kwargs)
    return [str(p) for p in info.value.problems]


WITH_USER = """\
    services:
      db:
        command: [postgres]
      web:
        command: [gunicorn]
        user: "{user}"
    """


def test_user_is_accepted_as_root() -> None:
    """As root, any user (name or id) is accepted: it is resolved when the service starts."""
    for user in ("1000:1000", "www-data", "nobody:nogroup", "1000870000"):
        assert load(WITH_USER.format(user=user)).services["web"].user == user


def test_user_switch_needs_root() -> None:
    """Not root: a `user:` naming another uid is a problem with file:line: key, at check
    time, that names pyinit's own uid."""
    for user in ("1000:1000", "root", "0", "1000870001:0"):
        assert problems(WITH_USER.format(user=user), OPENSHIFT) == [
            "services.yaml:6: services.web.user: switching to another user needs root; "
            "pyinit runs as uid 1000870000"
        ], user


def test_user_other_group_needs_root() -> None:
    """Not root: pyinit's own uid with another gid is a switch of group."""
    assert problems(WITH_USER.format(user="1000870000:5"), OPENSHIFT) == [
        "services.yaml:6: services.web.user: switching to another group needs root; "
        "pyinit runs as uid 1000870000, gid 0"
    ]


def test_user_equal_to_own_ids_is_fine_without_root() -> None:
    """Not root: pyinit's own uid, alone or with its own gid, switches nothing."""
    for user in ("1000870000", "1000870000:0"):
        assert load(WITH_USER.format(user=user), OPENSHIFT).services["web"].user == user


def test_unknown_user_name_is_another_user() -> None:
    """A name without a passwd entry cannot be pyinit's own uid."""
    assert user_switch_problem("no-such-user-xyz", 1000, 1000) is not None
    assert user_switch_problem("no-such-user-xyz", 0, 0) is None  # root: checked at start


def test_hardening_defaults() -> None:
    """Without the keys: no no_new_privs, pyinit's umask, pyinit's limits."""
    web = load("services:\n  web:\n    command: [a]\n").services["web"]
    assert (web.no_new_privs, web.umask, web.ulimits) == (False, None, ())


def test_hardening_values() -> None:
    """no_new_privs, an octal umask (always read as octal), and Compose's three forms of
    ulimits: one number for soft and hard, [soft, hard], {soft, hard}; unlimited/-1."""
    config = load(
        """\
        services:
          web:
            command: [a]
            no_new_privs: true
            umask: "0027"
            ulimits:
              nofile: {soft: 1024, hard: 2048}
              nproc: [512, 1024]
              core: 0
              memlock: unlimited
              stack: [8388608, -1]
          b:
            command: [b]
            umask: 022
          c:
            command: [c]
            umask: 0o77
        """
    )
    web = config.services["web"]
    assert web.no_new_privs is True
    assert web.umask == 0o027
    assert web.ulimits == (
        ("nofile", 1024, 2048),
        ("nproc", 512, 1024),
        ("core", 0, 0),
        ("memlock", -1, -1),
        ("stack", 8388608, -1),
    )
    assert config.services["b"].umask == 0o022
    assert config.services["c"].umask == 0o077
    line = summary(config).splitlines()[1]
    assert "no_new_privs" in line and "umask 0027" in line
    assert "ulimits nofile 1024:2048, nproc 512:1024, core 0:0, memlock unlimited:unlimited" in line


def test_hardening_problems() -> None:
    """Every mistake is reported with file:line: key: a non-boolean, a non-octal or too
    large umask, an unknown limit (with a did-you-mean), soft above hard, a negative or
    non-numeric value, a list of three, a missing hard, an unknown sub-key."""
    found = problems(
        """\
        services:
          web:
            command: [a]
            no_new_privs: yes please
            umask: 18
          b:
            command: [b]
            umask: "1777"
            ulimits:
              nofiles: 10
              nproc: [10, 5]
              core: -5
              cpu: [1, 2, 3]
              fsize: {soft: 1}
              data: {soft: 1, hard: 2, max: 3}
              stack: lots
              rss: [unlimited, 10]
        """
    )
    assert found == [
        "services.yaml:4: services.web.no_new_privs: expected true or false; got a string "
        "('yes please')",
        'services.yaml:5: services.web.umask: expected an octal mode such as "0027" (000-777); '
        "got '18'",
        'services.yaml:8: services.b.umask: expected an octal mode such as "0027" (000-777); '
        "got '1777'",
        "services.yaml:10: services.b.ulimits.nofiles: unknown limit; did you mean 'nofile'?",
        "services.yaml:11: services.b.ulimits.nproc: the soft limit (10) is above the hard "
        "limit (5)",
        "services.yaml:12: services.b.ulimits.core: expected a whole number >= 0, or unlimited; "
        "got a number (-5)",
        "services.yaml:13: services.b.ulimits.cpu: expected [soft, hard]; got a list of 3",
        "services.yaml:14: services.b.ulimits.fsize.hard: required key missing",
        "services.yaml:15: services.b.ulimits.data.max: unknown key",
        "services.yaml:16: services.b.ulimits.stack: expected a whole number >= 0, or "
        "unlimited; got a string ('lots')",
        "services.yaml:17: services.b.ulimits.rss: the soft limit (unlimited) is above the hard "
        "limit (10)",
    ]


def test_rlimits_is_not_a_key() -> None:
    """One name for the idea, Compose's: `rlimits` points at `ulimits`."""
    assert problems("services:\n  web:\n    command: [a]\n    rlimits: {core: 0}\n") == [
        "services.yaml:4: services.web.rlimits: unknown key; did you mean 'ulimits'?"
    ]


def test_environment_values_never_in_problems() -> None:
    """A malformed `$` inside an environment value is reported without quoting the
    value (it may be a secret); the same mistake in a command is quoted."""
    found = problems(
        """\
        services:
          web:
            command: [a]
            environment:
              DB_PASSWORD: "hunter2$(x"
              TOKEN: "${hunter2"
            env_file: []
          b:
            command: ["x$(y"]
            environment: ["API_KEY=hunter2${", "9BAD=hunter2"]
        """
    )
    assert len(found) == 5, found
    assert not any("hunter2" in p for p in found), found
    assert any("services.b.command[0]" in p and "$(y" in p for p in found), found
