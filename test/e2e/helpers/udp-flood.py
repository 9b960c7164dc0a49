"""Floods UDP datagrams from a lab namespace at a bounded rate for a bounded time:

    ip netns exec hl-<id>-client python3 udp-flood.py '<json>'

<json> is {"datagrams": [{hex, to, port, from?, fromPort?}, ...], "rate": R, "seconds": S}:
the list is sent round-robin, R datagrams per second in all (in batches every millisecond),
for S seconds, then the number sent (without a send error) is printed. R is capped at 20000 and S at 30 so a test
cannot flood the machine by mistake. A `from` address that is not the namespace's own is
bound with IP_TRANSPARENT (root), how the test spoofs a member's source address.
"""
import json
import socket
import sys
import time

IP_TRANSPARENT = 19
spec = json.loads(sys.argv[1])
rate = min(float(spec["rate"]), 20000.0)
seconds = min(float(spec["seconds"]), 30.0)
sockets = {}
items = []
for d in spec["datagrams"]:
    key = (d.get("from", "0.0.0.0"), d.get("fromPort", 0))
    s = sockets.get(key)
    if s is None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if "from" in d:
            s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        s.bind(key)
        sockets[key] = s
    items.append((s, bytes.fromhex(d["hex"]), (d["to"], int(d["port"]))))

sent = 0
tried = 0
start = time.monotonic()
total = int(rate * seconds)
i = 0
while tried < total:
    due = min(total, int((time.monotonic() - start) * rate) + 1)
    while tried < due:
        s, payload, to = items[i]
        i = (i + 1) % len(items)
        tried += 1
        try:
            s.sendto(payload, to)
            sent += 1
        except OSError:
            pass
    time.sleep(0.001)
print(sent)
