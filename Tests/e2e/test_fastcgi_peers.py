"""The FastCGI listener's trust boundary (docs/design.md#trust-boundaries): a TCP listener accepts only the
peers it is told to, before reading a byte, and no connection can hold a worker by saying
nothing. Uses a second loopback address (127.0.0.2) as the untrusted peer's."""

import socket
import subprocess
import time

import pytest

from fastcgi_client import fastcgi_request
from vpsgate_stack import free_port, wait_until


@pytest.fixture()
def tcp_instance(stack):
    """A third instance on TCP, 2 workers, that trusts 127.0.0.2 only, with a 1 s read deadline."""
    port = free_port()
    env = dict(stack.instance_env(7), VPSGATE_LISTEN=f"127.0.0.1:{port}", VPSGATE_ALLOWED_PEERS="127.0.0.2",
               VPSGATE_WORKERS="2", VPSGATE_READ_TIMEOUT_MS="1000")
    process = subprocess.Popen([str(stack.binary), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    wait_until(lambda: f":{port} " in subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout, 20, "the TCP instance")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_peer_outside_the_allowed_networks_never_connects(tcp_instance):
    status, body = fastcgi_request(tcp_instance, "GET", "/healthz", source="127.0.0.2")
    assert status == 200, body
    started = time.monotonic()
    with pytest.raises(OSError):  # its SYN is dropped: the connection never completes
        fastcgi_request(tcp_instance, "POST", "/v1/vps/1001/stop", {"REMOTE_USER": "root"}, source="127.0.0.1", timeout=2)
    assert time.monotonic() - started >= 1.5


def test_silent_connections_cannot_hold_the_workers(tcp_instance):
    host, port = tcp_instance.split(":")
    idle = []
    for _ in range(2):  # as many as the workers, saying nothing
        connection = socket.socket()
        connection.bind(("127.0.0.2", 0))
        connection.connect((host, int(port)))
        idle.append(connection)
    try:
        started = time.monotonic()
        status, _ = fastcgi_request(tcp_instance, "GET", "/healthz", source="127.0.0.2", timeout=10)
        assert status == 200
        # 1 s of silence, then libfcgi's close (which waits up to 2 s for the peer's EOF).
        assert time.monotonic() - started < 6, "a real request waited for silent ones"
        # The silent ones were closed by vpsgate after its deadline.
        for connection in idle:
            connection.settimeout(5)
            assert connection.recv(1) == b""
    finally:
        for connection in idle:
            connection.close()
