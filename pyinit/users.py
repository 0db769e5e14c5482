"""Users and groups as services name them: ``name``, ``uid``, ``name:group``, ``uid:gid``.

pwd and grp are imported on first use: wrapper mode never switches user.
"""

from __future__ import annotations

import os


def user_id(name: str) -> int | None:
    """A uid given as digits or a user name; None for an unknown name."""
    import pwd

    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def group_id(name: str) -> int | None:
    """A gid given as digits or a group name; None for an unknown name."""
    import grp

    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def resolve_user(user: str) -> tuple[int, int, list[int]]:
    """``name``, ``uid``, ``name:group`` or ``uid:gid`` -> (uid, gid, supplementary groups).

    Raises LookupError naming what is unknown, PermissionError when pyinit is not
    root and would have to switch to another user.
    """
    import pwd

    who, _, group = user.partition(":")
    uid = user_id(who)
    if uid is None:
        raise LookupError(f"unknown user {who!r}")
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(uid)
    except KeyError:
        entry = None  # an arbitrary uid with no passwd entry (OpenShift) is fine
    if group:
        found = group_id(group)
        if found is None:
            raise LookupError(f"unknown group {group!r}")
        gid = found
    else:
        gid = entry.pw_gid if entry is not None else uid
    if not group and os.geteuid() != 0 and uid == os.geteuid():
        gid = os.getegid()  # "run as me": not root, nothing to switch
    groups = os.getgrouplist(entry.pw_name, gid) if entry is not None else [gid]
    if os.geteuid() != 0 and (uid, gid) != (os.geteuid(), os.getegid()):
        raise PermissionError(
            f"switching to user {user!r} needs root; pyinit runs as uid {os.geteuid()}"
        )
    return uid, gid, groups
