"""Prints, in hex, the UDP payload of the first IPv4 datagram SRC -> DST:PORT seen on IFACE.

Run by the wire e2e test in the lab's switch namespace on a node's switch port (read-only:
an AF_PACKET socket changes nothing on the link):

    ip netns exec hl-<id>-sw python3 capture-udp.py IFACE SRC DST PORT TIMEOUT_S [ttl]

With the word `ttl` last, the line starts with "ttl=<IP TTL> ". Exits 1 when nothing
matched within TIMEOUT_S seconds.
"""
import binascii
import socket
import struct
import sys
import time

iface, src, dst, port, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
show_ttl = len(sys.argv) > 6 and sys.argv[6] == "ttl"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
s.settimeout(timeout)
want_src, want_dst = socket.inet_aton(src), socket.inet_aton(dst)
end = time.time() + timeout
while time.time() < end:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        break
    if frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    if len(ip) < 20 or ip[9] != 17 or ip[12:16] != want_src or ip[16:20] != want_dst:
        continue
    ihl = (ip[0] & 15) * 4
    udp = ip[ihl:]
    _sport, dport, length = struct.unpack("!HHH", udp[:6])
    if dport != port:
        continue
    print(("ttl=%d " % ip[8] if show_ttl else "") + binascii.hexlify(udp[8:length]).decode())
    sys.exit(0)
sys.exit(1)
