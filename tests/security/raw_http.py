"""Raw sockets for the slow-client tests: connections from a chosen loopback address (Linux routes
all of 127.0.0.0/8 to lo, so each test client can have an address of its own), requests written
byte by byte, and replies read with a deadline. Standard library only."""
import json
import socket
import time


def connect(port, source="127.0.0.1", timeout=5):
    """A TCP connection to 127.0.0.1:port from source (an address of 127.0.0.0/8)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def request_head(method, path, headers=None, length=None):
    """The request line and headers, ending with the blank line."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_reply(sock, timeout):
    """(status, {header: value}, body, seconds) of the reply on sock, reading for at most timeout
    seconds; status None when the server closed without a reply, "timeout" when nothing came."""
    t0 = time.monotonic()
    data = b""
    sock.settimeout(0.05)
    closed = False
    while time.monotonic() - t0 < timeout:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            chunk = None
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if chunk == b"":
            closed = True
            break
        if chunk:
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                hdrs = parse_headers(head)
                n = int(hdrs.get("content-length", "-1"))
                if n >= 0 and len(rest) >= n:
                    break
    took = time.monotonic() - t0
    if not data:
        return (None if closed else "timeout"), {}, b"", took
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, parse_headers(head), body, took


def parse_headers(head):
    out = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        out[k.strip().lower()] = v.strip()
    return out


def closed_within(sock, timeout):
    """Seconds until the server closed sock (reading and discarding any reply), or None if it
    was still open after timeout."""
    t0 = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - t0 < timeout:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def problem(body):
    """The problem+json document of a reply body."""
    return json.loads(body.decode())


def get(port, path, token=None, source="127.0.0.1", timeout=5):
    """One GET on a fresh connection: (status, headers, body, seconds); status "error" when the
    connection failed."""
    t0 = time.monotonic()
    try:
        s = connect(port, source, timeout)
    except OSError:
        return "error", {}, b"", time.monotonic() - t0
    try:
        hdrs = {"Connection": "close"}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        s.sendall(request_head("GET", path, hdrs))
        st, h, b, _ = read_reply(s, timeout)
        return st, h, b, time.monotonic() - t0
    except OSError:
        return "error", {}, b"", time.monotonic() - t0
    finally:
        s.close()
