"""The socket-level limits `newsqa serve` adds to uvicorn, over a real socket on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from newsqa.bot.http.server import GuardedHttpToolsProtocol


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


class QuickHeadProtocol(GuardedHttpToolsProtocol):
    head_timeout = 0.5


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    # log_config=None: leave the process's logging alone (uvicorn's own config would stop its access
    # log reaching the root logger for every later test in this process).
    config = uvicorn.Config(hello, host="127.0.0.1", port=0, http=QuickHeadProtocol, log_config=None,
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def test_ordinary_requests_and_keep_alive_still_work(server):
    with socket.create_connection(server) as sock:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while not reply.endswith(b"hello"):
                reply += sock.recv(4096)
            assert reply.startswith(b"HTTP/1.1 200")
            time.sleep(0.3)  # each request's head gets its own deadline


def test_a_huge_header_is_refused_before_it_is_read(server):
    sent = 0
    with socket.create_connection(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * 65536
        try:
            while sent < 50 * 2**20:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_all(sock)
    assert sent < 50 * 2**20, "the server read the whole 50 MiB header"
    assert reply.startswith(b"HTTP/1.1 431") and b'"code":"headers_too_large"' in reply


def test_too_many_headers_are_refused(server):
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(GuardedHttpToolsProtocol.max_headers + 1))
    with socket.create_connection(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 431")


def test_a_head_sent_a_byte_at_a_time_is_cut_off(server):
    with socket.create_connection(server) as sock:
        started = time.monotonic()
        closed = False
        for byte in b"GET / HTTP/1.1\r\nHost: slowly-sent-host\r\n":
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.1)
            try:
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed and time.monotonic() - started < 3
