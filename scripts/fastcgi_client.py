"""A minimal FastCGI client: one request to one vpsgate instance, without nginx."""

from pathlib import Path


def fastcgi_request(address: str | Path, method: str, uri: str, params: dict[str, str] | None = None,
                    body: bytes = b"", timeout: float = 10, source: str | None = None) -> tuple[int, bytes]:
    """`address`: a unix socket path, `unix:/path` or `host:port`. `params` are sent as nginx
    would (REMOTE_USER, HTTP_IDEMPOTENCY_KEY, …); `source`: the local address to connect
    from (TCP). Returns (status, body)."""
    import socket
    import struct

    def record(kind: int, content: bytes) -> bytes:
        return struct.pack(">BBHHBx", 1, kind, 1, len(content), 0) + content

    def pair(name: str, value: str) -> bytes:
        n, v = name.encode(), value.encode()
        return bytes([len(n)]) + (bytes([len(v)]) if len(v) < 128 else struct.pack(">I", len(v) | 0x80000000)) + n + v

    all_params = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "REQUEST_ID": "direct-1",
                  "CONTENT_LENGTH": str(len(body))} | (params or {})
    encoded = b"".join(pair(k, v) for k, v in all_params.items())
    text = str(address).removeprefix("unix:")
    if text.startswith("/"):
        connection, target = socket.socket(socket.AF_UNIX), text
    else:
        host, port = text.rsplit(":", 1)
        connection, target = socket.socket(socket.AF_INET), (host, int(port))
    with connection as s:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect(target)
        stdin = b"".join(record(5, body[i:i + 65535]) for i in range(0, len(body), 65535)) + record(5, b"")
        s.sendall(record(1, struct.pack(">HB5x", 1, 0)) + record(4, encoded) + record(4, b"") + stdin)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    stdout = b""
    while data:
        _, kind, _, length, padding = struct.unpack(">BBHHB", data[:7])
        if kind == 6:
            stdout += data[8:8 + length]
        data = data[8 + length + padding:]
    head, _, response = stdout.partition(b"\r\n\r\n")
    first = head.split(b"\r\n")[0]
    status = int(first.split()[1]) if first.lower().startswith(b"status:") else 200
    return status, response


def fastcgi_get(path: str | Path, uri: str) -> tuple[int, bytes]:
    return fastcgi_request(path, "GET", uri)
