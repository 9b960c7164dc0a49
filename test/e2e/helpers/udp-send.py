"""Sends raw UDP datagrams from a lab namespace (the wire e2e test runs it in the client's):

    ip netns exec hl-<id>-client python3 udp-send.py '<json>'

<json> is a list of {hex, to, port, from?, fromPort?, gap?} (gap: seconds to wait after it,
default 0.002). A `from` address that is not the
namespace's own is bound with IP_TRANSPARENT (root), which is how the test spoofs a member's
source address (a plain non-local bind lets the bind succeed but every send fails with
ENETUNREACH). Prints the number of datagrams sent.
"""
import json
import socket
import sys
import time

IP_TRANSPARENT = 19
sockets = {}
sent = 0
for d in json.loads(sys.argv[1]):
    key = (d.get("from", "0.0.0.0"), d.get("fromPort", 0))
    s = sockets.get(key)
    if s is None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if "from" in d:
            s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        s.bind(key)
        sockets[key] = s
    s.sendto(bytes.fromhex(d["hex"]), (d["to"], d["port"]))
    sent += 1
    time.sleep(d.get("gap", 0.002))
print(sent)
