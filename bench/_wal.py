"""Count SQLite commits from the database itself: commit frames appended to the WAL.

Every WAL frame has a 24-byte header whose second field is the database size in
pages for a commit frame and 0 otherwise. Between two snapshots with the same WAL
salt (no checkpoint restarted the log), the number of commits is the number of new
commit frames. A reset WAL between snapshots is reported as ``None``.
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


def commits_between(before: tuple[bytes, int, int], after: tuple[bytes, int, int]) -> int | None:
    if before[0] != after[0]:
        return None
    return after[2] - before[2]
