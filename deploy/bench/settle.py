#!/usr/bin/env python3
"""Waits until a layout change has completed and settled on every node.

Usage: settle.py POLL_SECS TIMEOUT_SECS URL...

Each URL is a node's /v1/cluster status. Polls them all every POLL_SECS
from this one process (a curl and a jq per poll cost the two cores the
nodes share a few percent of their time) and prints two Unix times, one
a line: when every node had one layout in use (`change` null), and when
every node had also dropped its old copies (`transfers.to_drop` 0).
Exits 1 if that takes longer than TIMEOUT_SECS.
"""

import json
import sys
import time
import urllib.request


def status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)
    except (OSError, ValueError):
        return None


def holds(urls, settled):
    for url in urls:
        node = status(url)
        if node is None or node.get("change") is not None:
            return False
        if settled and node.get("transfers", {}).get("to_drop") != 0:
            return False
    return True


def main():
    poll, timeout, urls = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    deadline = time.monotonic() + timeout
    for settled in (False, True):
        while not holds(urls, settled):
            if time.monotonic() > deadline:
                print(f"not settled within {timeout:.0f} s", file=sys.stderr)
                return 1
            time.sleep(poll)
        print(f"{time.time():.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
