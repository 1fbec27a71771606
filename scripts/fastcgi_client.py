"""A minimal FastCGI client: one GET to one vpsgate instance's socket, without nginx."""

from pathlib import Path

def fastcgi_get(path: Path, uri: str) -> tuple[int, bytes]:
    import socket
    import struct

    def record(kind: int, content: bytes) -> bytes:
        return struct.pack(">BBHHBx", 1, kind, 1, len(content), 0) + content

    def pair(name: str, value: str) -> bytes:
        n, v = name.encode(), value.encode()
        return bytes([len(n)]) + (bytes([len(v)]) if len(v) < 128 else struct.pack(">I", len(v) | 0x80000000)) + n + v

    params = b"".join(pair(k, v) for k, v in {"REQUEST_METHOD": "GET", "REQUEST_URI": uri, "REQUEST_ID": "direct-1"}.items())
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(record(1, struct.pack(">HB5x", 1, 0)) + record(4, params) + record(4, b"") + record(5, b""))
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
    head, _, body = stdout.partition(b"\r\n\r\n")
    status = int(head.split(b"\r\n")[0].split()[1])
    return status, body
