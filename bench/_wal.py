"""Count SQLite commits and pages written from the database itself: frames appended to the WAL.

Every WAL frame is one page written, with a 24-byte header whose second field is
the database size in pages for a commit frame and 0 otherwise. Between two
snapshots with the same WAL salt (no checkpoint restarted the log), the commits
are the new commit frames and the pages written are the new frames (each one two
``pwrite`` calls: header and page). A reset WAL between snapshots is reported as
``None``.
"""

from __future__ import annotations

from pathlib import Path

WAL_HEADER = 32
FRAME_HEADER = 24


def commit_frames(db_path: str) -> tuple[bytes, int, int]:
    """(salt, valid frames, commit frames) of the WAL of ``db_path``."""
    data = Path(db_path + "-wal").read_bytes()
    if len(data) < WAL_HEADER:
        return b"", 0, 0
    page_size = int.from_bytes(data[8:12], "big")
    salt = data[16:24]
    frames = commits = 0
    offset = WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(data):
        header = data[offset : offset + FRAME_HEADER]
        if header[8:16] != salt:  # a stale frame from before the last restart
            break
        frames += 1
        if int.from_bytes(header[4:8], "big"):
            commits += 1
        offset += FRAME_HEADER + page_size
    return salt, frames, commits


def written_between(
    before: tuple[bytes, int, int], after: tuple[bytes, int, int]
) -> tuple[int, int] | None:
    """(commits, pages written) between two :func:`commit_frames` snapshots."""
    if before[0] != after[0]:
        return None
    return after[2] - before[2], after[1] - before[1]
