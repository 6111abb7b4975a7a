"""A permessage-deflate client built on the `websockets` library (not our code).

Usage: deflate_client.py WS_URL. Connects twice with the library's default compression
offer and once without; the gateway echoes every message back (the Rust test's sink) and
broadcasts one line when asked. Prints one JSON line of findings and exits 0, or prints the
failure and exits 1.
"""

import json
import sys

from websockets.sync.client import connect

TEXT = "netsvr compresses this sentence for every subscriber. " * 2000
BINARY = bytes(range(64)) * 1024


def main(url: str) -> int:
    found = {}
    with connect(url, max_size=4 * 1024 * 1024, open_timeout=10) as ws:
        found["extensions"] = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        for name, payload in (("text", TEXT), ("binary", BINARY), ("small", "hi")):
            ws.send(payload)
            echo = ws.recv(timeout=10)
            if echo != payload:
                print(f"{name}: echo differs ({len(echo)} vs {len(payload)})")
                return 1
            found[name] = len(payload)
    with connect(url, compression=None, open_timeout=10) as plain:
        found["plain_extensions"] = plain.response.headers.get("Sec-WebSocket-Extensions", "")
        plain.send(TEXT)
        if plain.recv(timeout=10) != TEXT:
            print("plain client: echo differs")
            return 1
    print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
