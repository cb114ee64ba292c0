"""A small loopback HTTP server whose every answer is written by the test, byte by byte if need be."""
import socket
import socketserver
import threading


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        server = self.server
        stream = self.request.makefile("rb")
        request_line = stream.readline(65536).decode("latin-1").strip()
        headers = {}
        while True:
            line = stream.readline(65536).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = stream.read(int(headers.get("content-length", 0) or 0))
        server.seen.append({"line": request_line, "headers": headers, "body": body})
        try:
            server.answer(self.request, request_line, headers, body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            pass


class HostileServer(socketserver.ThreadingTCPServer):
    """``answer(sock, request_line, headers, body)`` writes the reply; ``seen`` lists the requests."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer=None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer or (lambda sock, *args: sock.sendall(reply(b"{}")))
        self.seen = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self):
        self.shutdown()
        self.server_close()


def reply(body=b"", status="200 OK", headers=()):
    """A complete HTTP/1.1 answer (Connection: close)."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close",
             "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def hostile_servers():
    """Body of a fixture that makes hostile servers, ``hostile(answer)``, and closes them after."""
    servers = []

    def make(answer=None):
        server = HostileServer(answer)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
