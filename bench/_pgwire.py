"""Count what a server says to PostgreSQL, on the wire: a counting TCP proxy.

pg_stat_statements needs ``shared_preload_libraries`` (a server restart), so the
benchmark counts from the protocol instead: every message the backend sends is
typed, and each round trip ends with exactly one ``ReadyForQuery`` ('Z'), each
executed statement with one ``CommandComplete`` ('C') whose tag names the command
(``BEGIN``, ``COMMIT``, ``SELECT 1``, ``UPDATE 1``...). Counts are of what the
backend answered, so they cannot be estimates. Commits are cross-checked against
``pg_stat_database.xact_commit`` (the database's own count; it also counts every
autocommit statement, reads included, as a transaction).

``write_commits`` counts transactions that wrote and committed: every
``ReadyForQuery`` carries the transaction status ('I' idle, 'T' in a block), so a
return to idle after a write (not undone by a ``ROLLBACK``) is one commit, of a
``BEGIN ... COMMIT`` block and of an autocommit statement alike. (A statement is a
write by its tag: a data-modifying ``WITH`` whose outer statement is a ``SELECT`` would
count as a read; racefree's one-statement payment ends with its audit ``INSERT``.)

A pipeline (psycopg's pipeline mode: several statements, then one ``Sync``) is one
``ReadyForQuery``: one round trip as long as the client reads its results only after
the ``Sync``, which is how racefree uses it (``racefree.core.db.Tx.batch``); a client
reading part-way would wait more often than counted here.

Connect through it with ``sslmode=disable&gssencmode=disable`` so the stream is
typed messages from the first byte.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter


class CountingProxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(
                target=self._backend, args=(server, client, _Link()), daemon=True
            ).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def _backend(self, src: socket.socket, dst: socket.socket, link: _Link) -> None:
        buf = b""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                buf += data
                buf = self._count(buf, link)
        except OSError:
            pass
        finally:
            dst.close()

    def _count(self, buf: bytes, link: _Link) -> bytes:
        counted: Counter[str] = Counter()
        while len(buf) >= 5:
            length = int.from_bytes(buf[1:5], "big")
            if len(buf) < 1 + length:
                break
            kind = buf[:1]
            if kind == b"Z":
                counted["round_trips"] += 1
                if buf[5:6] == b"I" and link.wrote:
                    counted["write_commits"] += 1
                    link.wrote = False
            elif kind == b"C":
                tag = buf[5 : 1 + length - 1].split(b" ", 1)[0].decode()
                counted["statements" if tag not in ("BEGIN", "COMMIT", "ROLLBACK") else tag] += 1
                if tag not in ("BEGIN", "COMMIT", "ROLLBACK", "SELECT", "SET", "SHOW"):
                    counted["writes"] += 1
                    link.wrote = True
                elif tag == "ROLLBACK":
                    link.wrote = False
            buf = buf[1 + length :]
        if counted:
            with self._lock:
                self.counts.update(counted)
        return buf


class _Link:
    """One proxied connection: whether its open transaction (or statement) wrote."""

    __slots__ = ("wrote",)

    def __init__(self) -> None:
        self.wrote = False
