"""Messages and file descriptors over a Unix stream socket.

A message is JSON.  Each frame is an 8-byte header (payload length, number
of descriptors) sent together with up to ``MAX_FDS`` descriptors
(``socket.send_fds``), then the payload.  Descriptors beyond one frame's
share travel in frames of their own ahead of the message.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct("!II")
#: Fewer than the kernel's SCM_MAX_FD (253) per frame.
MAX_FDS = 200
#: No message is larger (the state of 10,000 sessions is well under this).
MAX_PAYLOAD = 256 * 1024 * 1024


class WireClosed(ConnectionError):
    """The other end closed the socket."""


def send(
    sock: socket.socket, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()
) -> None:
    """Send ``message`` with ``fds`` (blocking)."""
    fds = list(fds)
    while len(fds) > MAX_FDS:
        batch, fds = fds[:MAX_FDS], fds[MAX_FDS:]
        socket.send_fds(sock, [HEADER.pack(0, len(batch))], batch)
    payload = json.dumps(message, separators=(",", ":")).encode()
    socket.send_fds(sock, [HEADER.pack(len(payload), len(fds))], fds)
    sock.sendall(payload)


def recv(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The next message and the descriptors that came with it (blocking)."""
    fds: list[int] = []
    while True:
        header, got = _recv_header(sock)
        fds.extend(got)
        length, count = HEADER.unpack(header)
        if len(got) != count:
            raise ValueError(f"expected {count} descriptors, got {len(got)}")
        if length:
            break
    if length > MAX_PAYLOAD:
        raise ValueError(f"a message of {length} bytes is too large")
    payload = _recv_exactly(sock, length)
    message = json.loads(payload)
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message, fds


def _recv_header(sock: socket.socket) -> tuple[bytes, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, MAX_FDS)
    if not data:
        raise WireClosed("the other end closed the socket")
    if len(data) < HEADER.size:
        data += _recv_exactly(sock, HEADER.size - len(data))
    return data, list(fds)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise WireClosed("the other end closed the socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
