"""Serving a stream socket from PID 1's loop: the part the control socket and the
HTTP endpoints share.

One request, one answer, close. PID 1 never waits on a client: the listener and
every connection are non-blocking and driven by the loop. What a client may cost
is bounded:

- buffers: a request is read up to ``max_request`` bytes; past it the server
  answers "too large" without buffering more. An answer is held as one chunk at
  a time (an iterator refills it as the socket drains); ``held`` counts the
  unsent bytes of all connections, for servers that cap them.
- deadlines: a request must be in within ``request_timeout`` of the accept.
  Then, with ``answer_timeout`` set, an answer that makes no progress for that
  long is dropped (held requests set their own timer); without it, the request
  timeout runs on to the last byte written: the connection's whole life.
- connections: at most ``max_connections``. When every slot is taken, the
  oldest connection that was promised nothing makes room for the newcomer; only
  when every slot holds a promise is the newcomer refused (accepted and closed).
  Which connections hold a promise is the server's call (``evictable``): the
  control socket's, once their request is in (an operation done, a ``wait``
  held, an answer streaming), and HTTP's never (a GET of a snapshot is answered
  the same on a retry). Connections that send nothing, or half a request, or
  read nothing, so churn instead of locking out the next probe or operator.
- accepting: at most ACCEPT_BATCH per wake-up, so a flood cannot starve the
  reaper; out of file descriptors, the listener rests for ACCEPT_PAUSE.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Generic, TypeVar

from pyinit.loop import EventLoop, Timer

ACCEPT_BATCH = 16  # accepts per wake-up
ACCEPT_PAUSE = 0.1  # accept failed (out of file descriptors): stop accepting this long
ACCEPT_LOG_EVERY = 10.0  # and say so at most this often
DRAIN_READS = 16  # reads of unread request bytes before a close (see Server.drop)
Log = Callable[..., None]  # (message, level=0)


class Connection:
    """One client: its socket, the request read so far, the answer not sent yet."""

    __slots__ = (
        "sock",
        "fd",
        "inbuf",
        "outbuf",
        "body",
        "held",
        "timer",
        "reading",
        "requested",
        "answering",
        "stream",
        "idle",
    )

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.outbuf = memoryview(b"")  # the part of the answer being sent
        self.body: Iterator[bytes | bytearray] | None = None  # the rest, chunk by chunk
        self.held = 0  # bytes of the answer not sent yet
        self.timer: Timer | None = None
        self.reading = False
        self.requested = False  # the request is in (or was refused): past reading it
        self.answering = False  # the answer is on its way: the connection ends with it
        self.stream = False  # an open-ended answer (a log follower): never "done"
        self.idle = False  # a stream with nothing to send until ``resume``


C = TypeVar("C", bound=Connection)


class Server(Generic[C]):
    """Accepts on ``sock`` and reads each connection's request; subclasses say where
    a request ends and what to answer (the hooks below)."""

    label = "server"  # prefix of log lines
    max_connections = 64
    max_request = 8192
    recv_size = 4096
    request_timeout = 5.0
    answer_timeout: float | None = None

    def __init__(self, loop: EventLoop, sock: socket.socket, log: Log) -> None:
        self.loop = loop
        self.sock = sock
        self.log = log
        self.conns: dict[int, C] = {}  # by fd; oldest first
        self.held = 0  # unsent answer bytes, all connections
        self.refused = 0
        self.closed = False
        self._paused: Timer | None = None
        self._accept_logged = float("-inf")
        loop.add_reader(sock.fileno(), self._on_accept)

    # -- hooks -------------------------------------------------------------------------
    def connection(self, sock: socket.socket) -> C:
        raise NotImplementedError

    def request_end(self, buf: bytearray) -> int:
        """Index just past the end of the request in ``buf``, or -1."""
        raise NotImplementedError

    def on_request(self, conn: C, request: bytes) -> None:
        raise NotImplementedError

    def on_too_large(self, conn: C) -> None:
        raise NotImplementedError

    def on_connect(self, conn: C) -> None:
        self.start_reading(conn)

    def on_eof(self, conn: C) -> None:
        """The client closed before its request was whole: nobody to answer."""
        self.drop(conn)

    def after_request(self, conn: C, data: bytes) -> None:
        """Bytes (``b""``: end of file) read after the request; ignored by default."""
        if not data:
            self.stop_reading(conn)

    def evictable(self, conn: C) -> bool:
        """May ``conn`` be closed to make room for a newcomer? Not once it holds a
        promise; by default, once its request is in."""
        return not conn.requested

    # -- accepting -----------------------------------------------------------------------
    def _on_accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno != errno.ECONNABORTED:  # not just that client gone
                    self._pause(exc)
                    return
                continue
            sock.setblocking(False)
            if not self._make_room():
                self.refused += 1
                sock.close()
                continue
            conn = self.connection(sock)
            self.conns[conn.fd] = conn
            self.on_connect(conn)

    def _pause(self, exc: OSError) -> None:
        # EMFILE, ENOBUFS...: the pending connection stays queued and the listener
        # readable; without a pause the loop would spin (and log) until fds free
        # up. Resume on a timer; say so at most every ACCEPT_LOG_EVERY seconds.
        now = time.monotonic()
        quiet = now - self._accept_logged < ACCEPT_LOG_EVERY
        if not quiet:
            self._accept_logged = now
        self.log(f"{self.label}: accept failed: {exc}; retrying", int(quiet))
        self.loop.remove_reader(self.sock.fileno())
        self._paused = self.loop.call_later(ACCEPT_PAUSE, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._on_accept)

    def _make_room(self) -> bool:
        if len(self.conns) < self.max_connections:
            return True
        victim = next((c for c in self.conns.values() if self.evictable(c)), None)
        if victim is None:
            return False
        self.drop(victim)
        return True

    # -- reading -------------------------------------------------------------------------
    def start_reading(self, conn: C) -> None:
        """Read the request, within request_timeout from now."""
        conn.reading = True
        self.loop.add_reader(conn.fd, partial(self._on_readable, conn))
        self.set_timer(conn, self.request_timeout, partial(self.drop, conn))

    def stop_reading(self, conn: C) -> None:
        if conn.reading:
            conn.reading = False
            self.loop.remove_reader(conn.fd)

    def _on_readable(self, conn: C) -> None:
        try:
            data = conn.sock.recv(self.recv_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(conn)
            return
        if conn.requested:
            self.after_request(conn, data)
            return
        if not data:
            self.on_eof(conn)
            return
        conn.inbuf += data
        end = self.request_end(conn.inbuf)
        if end < 0 and len(conn.inbuf) <= self.max_request:
            return
        self.mark_requested(conn)
        if 0 <= end <= self.max_request:
            self.on_request(conn, bytes(conn.inbuf[:end]))
        else:
            self.stop_reading(conn)
            self.on_too_large(conn)

    def mark_requested(self, conn: C) -> None:
        """The request is in: the request deadline is over (unless it is the whole
        life's, with no answer_timeout)."""
        conn.requested = True
        if self.answer_timeout is not None:
            self.cancel_timer(conn)

    def set_timer(self, conn: C, delay: float, callback: Callable[[], None]) -> None:
        """Replace the connection's timer: ``callback`` in ``delay`` seconds."""
        self.cancel_timer(conn)
        conn.timer = self.loop.call_later(delay, callback)

    def cancel_timer(self, conn: C) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None

    # -- answering -----------------------------------------------------------------------
    def live(self, conn: C) -> bool:
        """Still connected: identity, not the fd number, which a newer connection may
        have by the time a held request is answered."""
        return self.conns.get(conn.fd) is conn

    def send(
        self, conn: C, head: bytes, body: Iterator[bytes | bytearray] | None = None, size: int = 0
    ) -> None:
        """Send ``head``, then the ``size`` bytes ``body`` yields, then close. Once.

        A ``stream`` connection's body never ends: an empty chunk means nothing
        more yet (``resume`` when there is), and its bytes are counted in
        ``held`` as they are taken from the body, not ahead."""
        if not self.live(conn) or conn.answering:
            return
        conn.answering = conn.requested = True
        if self.answer_timeout is not None:
            self.cancel_timer(conn)
        conn.outbuf = memoryview(head)
        conn.body = body
        conn.held = len(head) + size
        self.held += conn.held
        self._flush(conn)

    def resume(self, conn: C) -> None:
        """A stream's body has something to send again."""
        if self.live(conn) and conn.idle:
            conn.idle = False
            self._flush(conn)

    def _next_chunk(self, conn: C) -> bool:
        """Refill outbuf from the body; False when the answer is all sent (or broken)."""
        try:
            chunk = next(conn.body, None) if conn.body is not None else None
        except Exception as exc:  # a bug making the body: drop, never linger
            self.log(f"{self.label}: internal error sending an answer: {exc!r}")
            return False
        if chunk is None:
            return False
        if conn.stream:
            if not chunk:
                conn.idle = True
                return False
            conn.held += len(chunk)
            self.held += len(chunk)
        conn.outbuf = memoryview(chunk)
        return True

    def _flush(self, conn: C) -> None:
        while conn.outbuf or self._next_chunk(conn):
            try:
                # MSG_NOSIGNAL: a client gone is EPIPE here, never a SIGPIPE that
                # the signal intake would forward to the services.
                sent = conn.sock.send(conn.outbuf, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                # The client is slow to read: finish when it is writable again,
                # within the deadline.
                # A stream is never dropped for a slow reader: it drops lines instead.
                if self.answer_timeout is not None and not conn.stream:
                    self.set_timer(conn, self.answer_timeout, partial(self.drop, conn))
                self.loop.add_writer(conn.fd, partial(self._flush, conn))
                return
            except OSError:
                break
            conn.outbuf = conn.outbuf[sent:]
            conn.held -= sent
            self.held -= sent
        else:
            if conn.idle:  # a stream, all sent for now: wait for ``resume``
                self.cancel_timer(conn)
                self.loop.remove_writer(conn.fd)
                return
        self.drop(conn)  # answered (or gone): one request per connection

    # -- closing -------------------------------------------------------------------------
    def drop(self, conn: C) -> None:
        """Close the connection (at its deadline, when answered, to make room...)."""
        if not self.live(conn):
            return
        del self.conns[conn.fd]
        self.cancel_timer(conn)
        self.loop.remove_reader(conn.fd)
        self.loop.remove_writer(conn.fd)
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            # Unread request bytes would make close() send a RST, which can
            # destroy the answer before the client read it; take what is there.
            for _ in range(DRAIN_READS):
                if not conn.sock.recv(65536):
                    break
        except OSError:
            pass
        conn.sock.close()
        self.held -= conn.held
        conn.held = 0
        conn.outbuf = memoryview(b"")
        conn.body = None  # what the answer still referred to goes with it

    def close(self) -> None:
        """Stop serving: drop every connection, close the listener."""
        if self.closed:
            return
        self.closed = True
        if self._paused is not None:
            self._paused.cancel()
        self.loop.remove_reader(self.sock.fileno())
        for conn in list(self.conns.values()):
            self.drop(conn)
        self.sock.close()
