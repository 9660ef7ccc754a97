"""The transport bounds an attempt by its timeout, even against a receiver that drips its answer."""

from __future__ import annotations

import socket
import threading
import time

from webhooks.guard import Guard, parse_networks
from webhooks.transport import Sender


def test_a_dripping_answer_cannot_hold_the_thread_much_past_the_timeout() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        try:
            while not stop.is_set():
                conn.sendall(b"x")
                time.sleep(0.2)
        except OSError:
            pass
        finally:
            conn.close()

    threading.Thread(target=drip, daemon=True).start()
    sender = Sender(Guard(allowed=parse_networks("127.0.0.0/8"), https_only=False), timeout_s=0.5)
    started = time.perf_counter()
    answer = sender.send(f"http://127.0.0.1:{port}/hook", {}, b"{}")
    took = time.perf_counter() - started
    stop.set()
    server.close()
    assert answer.status == 200 and took < 1.5  # the whole body would take over five hours


def test_a_refused_connection_says_so() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    sender = Sender(Guard(allowed=parse_networks("127.0.0.0/8"), https_only=False), timeout_s=1.0)
    answer = sender.send(f"http://127.0.0.1:{port}/hook", {}, b"{}")
    assert answer.status is None and answer.error == f"could not connect to 127.0.0.1:{port}"
