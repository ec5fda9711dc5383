"""An HTTP SMS provider in its own process that logs each arrival (`python -m tests.sink_server`).

Timing tests measure here rather than in the pytest process, whose other threads (pollers)
would otherwise delay the recording by holding the interpreter lock.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        arrived = time.time()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with open(self.server.log_path, "a") as log:  # type: ignore[attr-defined]
            log.write(f"{arrived:.6f} {body['to']}\n")
        reply = json.dumps({"id": f"sink-{arrived}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.log_path = sys.argv[2]  # type: ignore[attr-defined]
    server.serve_forever()
