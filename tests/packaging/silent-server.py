#!/usr/bin/env python3
"""A TCP server on 127.0.0.1 that accepts connections and never answers, so a TLS handshake to
it waits for bbconn's --connect-timeout: a check that is slow on purpose, during which the
operator writes Reconciling=True. Stops by itself after --lifetime seconds.

    silent-server.py --port 18449 --lifetime 300 &
"""
import argparse
import socket
import threading
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=18449)
    ap.add_argument("--lifetime", type=float, default=300.0)
    args = ap.parse_args()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    srv.settimeout(0.5)
    held = []
    deadline = time.monotonic() + args.lifetime
    print(f"silent server on 127.0.0.1:{args.port} for {args.lifetime:.0f}s", flush=True)
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        held.append(conn)  # never read, never written: the peer waits for its own timeout
        if len(held) > 256:
            held.pop(0).close()
    for c in held:
        c.close()
    srv.close()


if __name__ == "__main__":
    threading.current_thread().name = "silent-server"
    main()
