"""A service that becomes ready in one of several ways once the test writes to FIFO;
it writes MARKER right before.

    gated.py MODE FIFO MARKER PORT

MODE: ``http`` (listens at once, answers 503 on /ready until released, then
200), ``log_line`` (prints ``listening on PORT``), ``fd`` (writes a newline on
fd 3 and closes it) or ``tcp`` (listens on PORT). Prints ``server waiting``
before it waits for the fifo.
"""

import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

mode, fifo, marker, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def say(text):
    os.write(1, (text + "\n").encode())


def mark():
    with open(marker, "w") as f:
        f.write("ready")


if mode == "http":
    # Listens at once, answers 503 on /ready until released, then 200.
    go = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    state = {"ready": False, "refused": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if not state["ready"]:
                try:
                    released = bool(os.read(go, 100))
                except BlockingIOError:
                    released = False
                if released:
                    mark()
                    state["ready"] = True
            code = 200 if state["ready"] and self.path == "/ready" else 503
            if code == 503:
                state["refused"] += 1
                if state["refused"] == 1:
                    say("server waiting (answered 503)")
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()

say("server waiting")
with open(fifo) as f:
    f.read(1)
if mode == "log_line":
    say("listening on port")  # no digits: the pattern does not match this one
    mark()
    say(f"listening on {port}")
elif mode == "fd":
    mark()
    os.write(3, b"\n")
    os.close(3)
elif mode == "tcp":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    mark()
    s.listen()
    while True:
        s.accept()[0].close()
while True:
    signal.pause()
