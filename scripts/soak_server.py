#!/usr/bin/env python3
"""A flaky file server on 127.0.0.1 for scripts/soak (dev-time): serves the files of one folder with HTTP Range,
and at random drops the connection partway, sends slowly, or flips one byte of the body.

    soak_server.py DIR PORTFILE SEED     # writes the port it listens on to PORTFILE
"""
import http.server
import os
import random
import socketserver
import sys
import time

ROOT, PORTFILE, SEED = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(SEED)
CHUNK = 64 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = os.path.join(ROOT, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        start = 0
        rng_hdr = self.headers.get("Range")
        if rng_hdr and rng_hdr.startswith("bytes="):
            start = int(rng_hdr[6:].split("-")[0])
        body = bytearray(data[start:])
        mode = rng.choices(["normal", "drop", "slow", "flip"], [35, 30, 25, 10])[0]
        if mode == "flip" and body:
            i = rng.randrange(len(body))
            body[i] ^= 0x5A
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        cut = rng.randrange(len(body) + 1) if mode == "drop" else len(body)
        try:
            for at in range(0, cut, CHUNK):
                self.wfile.write(body[at:min(at + CHUNK, cut)])
                if mode == "slow":
                    time.sleep(0.02)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        if mode == "drop":
            self.close_connection = True
            self.connection.shutdown(2)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client killed mid-transfer is what this server is for


srv = Server(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
