"""Processes the tests watch: the children a job or a scorer starts."""

from __future__ import annotations

from pathlib import Path


def child_pids(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is `pid`."""
    children: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name is in parentheses and may hold spaces: split after it.
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(stat.parent.name))
    return children
