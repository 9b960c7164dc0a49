"""Prints one JSON line per ARP frame seen on IFACE whose sender address starts with PREFIX.

Run by bench/provision/run.ts in the lab's client namespace (read-only: an AF_PACKET socket
changes nothing on the link), until it is killed or its stdin closes:

    ip netns exec hl-<id>-client python3 -u arp-watch.py eth0 198.18.0.1

Each line: {"t": <wall clock ms when received>, "op": 1|2, "sip": ..., "tip": ..., "sha": ...}.
A gratuitous ARP (the announcement of a newly bound VIP) has op 1 and sip == tip.
"""
import json
import select
import socket
import sys
import time

iface, prefix = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((iface, 0))
print(json.dumps({"ready": True}), flush=True)
while True:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in r and not sys.stdin.readline():
        break
    if s not in r:
        continue
    frame = s.recv(2048)
    t = time.time() * 1000
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        continue
    arp = frame[14:]
    op = int.from_bytes(arp[6:8], "big")
    sha = arp[8:14].hex(":")
    sip = socket.inet_ntoa(arp[14:18])
    tip = socket.inet_ntoa(arp[24:28])
    if sip.startswith(prefix):
        print(json.dumps({"t": t, "op": op, "sip": sip, "tip": tip, "sha": sha}), flush=True)
