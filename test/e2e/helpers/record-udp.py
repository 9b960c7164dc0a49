"""Records, in hex one per line, the UDP payloads of IPv4 datagrams SRC -> DST:PORT seen on IFACE
for SECONDS (at most MAX of them): the replaying adversary of the replay e2e test. Run in the lab's
switch namespace on a node's switch port (read-only: an AF_PACKET socket changes nothing on the
link):

    ip netns exec hl-<id>-sw python3 record-udp.py IFACE SRC DST PORT SECONDS MAX
"""
import binascii
import socket
import struct
import sys
import time

iface, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
seconds, limit = float(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
want_src, want_dst = socket.inet_aton(src), socket.inet_aton(dst)
end = time.time() + seconds
count = 0
while count < limit:
    left = end - time.time()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        frame, addr = s.recvfrom(65535)
    except socket.timeout:
        break
    if addr[2] == socket.PACKET_OUTGOING or frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    if len(ip) < 20 or ip[9] != 17 or ip[12:16] != want_src or ip[16:20] != want_dst:
        continue
    ihl = (ip[0] & 15) * 4
    udp = ip[ihl:]
    _sport, dport, length = struct.unpack("!HHH", udp[:6])
    if dport != port:
        continue
    print(binascii.hexlify(udp[8:length]).decode(), flush=True)
    count += 1
