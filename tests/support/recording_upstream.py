"""An upstream that records every byte it is sent: the proof that a proxy passed nothing on.

A raw TCP server on a free loopback port, one thread with a selector. It answers each
complete request (framed by Content-Length or chunked) with a fixed small response and keeps
the connection open; bytes it cannot frame are recorded and left unanswered.

    with RecordingUpstream() as upstream:
        ...  # point the proxy at 127.0.0.1:upstream.port
        assert upstream.received() == b""
"""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def request_length(buf: bytes | bytearray) -> int | None:
    """Length of the first complete request in `buf`, or None if it is incomplete or unframed.

    Only as strict as an upstream behind a proxy needs: the proxy is the one under test.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").lower().split("\r\n")[1:]
    fields = dict(line.partition(":")[::2] for line in head)
    te = fields.get("transfer-encoding", "").strip()
    pos = end + 4
    if te:
        if te.rsplit(",", 1)[-1].strip() != "chunked":
            return None
        while True:  # chunks, then trailers up to the empty line
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            try:
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            except ValueError:
                return None
            pos = eol + 2
            if size == 0:
                trailers_end = buf.find(b"\r\n", pos)
                while trailers_end > pos:  # skip trailer lines
                    pos = trailers_end + 2
                    trailers_end = buf.find(b"\r\n", pos)
                return pos + 2 if trailers_end == pos else None
            pos += size + 2
            if len(buf) < pos:
                return None
    try:
        length = int(fields.get("content-length", "0").strip() or "0")
    except ValueError:
        return None
    return pos + length if len(buf) >= pos + length else None


class RecordingUpstream:
    """Records all bytes per connection; answers complete requests with `RESPONSE`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._listener = socket.create_server((host, 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        # per connection, in accept order: everything received, and what is not yet answered
        self._records: list[bytearray] = []
        self._pending: dict[socket.socket, tuple[bytearray, bytearray]] = {}
        self.requests = 0
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="recording-upstream", daemon=True)

    # lifecycle

    def start(self) -> RecordingUpstream:
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._wake_w.send(b"x")
            self._thread.join(5)
        for conn in list(self._pending):
            conn.close()
        self._pending.clear()
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def __enter__(self) -> RecordingUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # what was received

    def received(self) -> bytes:
        """Every byte received since the start or the last `clear()`, connections in order."""
        with self._lock:
            return b"".join(bytes(r) for r in self._records)

    def connections(self) -> list[bytes]:
        """What each connection sent, in accept order (empty ones included)."""
        with self._lock:
            return [bytes(r) for r in self._records]

    def clear(self) -> None:
        """Forget what was received; connections still open keep recording from here."""
        with self._lock:
            for record in self._records:
                record.clear()
            self._records = [record for record, _ in self._pending.values()]
            self.requests = 0

    # the loop

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                sock = key.fileobj
                if sock is self._wake_r:
                    return
                if sock is self._listener:
                    self._accept()
                else:
                    assert isinstance(sock, socket.socket)
                    self._read(sock)

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)  # only read when readable; writes are a few dozen bytes
        record = bytearray()
        with self._lock:
            self._records.append(record)
            self._pending[conn] = (record, bytearray())
        self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(conn)
            with self._lock:
                self._pending.pop(conn, None)
            conn.close()
            return
        with self._lock:
            record, unanswered = self._pending[conn]
            record.extend(data)
            unanswered.extend(data)
            answers = 0
            while (length := request_length(unanswered)) is not None:
                del unanswered[:length]
                answers += 1
            self.requests += answers
        try:
            conn.sendall(RESPONSE * answers)
        except OSError:
            pass
