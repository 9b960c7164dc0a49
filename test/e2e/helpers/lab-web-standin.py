#!/usr/bin/python3
# Lab stand-in for the web server of examples/two-node-web.yaml (/etc/heartline/resource.d/apache
# on each lab node; test/e2e/helm-cluster.test.ts installs it). Heartbeat's resource-script
# contract: `start` starts the server in the background and returns once it answers, `status`
# exits 0 while it answers (3 otherwise, LSB's "not running"), `graceful-stop` stops it.
# The server answers every request on :8080 with the node's name (from /etc/heartline/node-name),
# like the lab's own HTTP service, so the lab's prober can tell who answered. It runs from the
# node's root filesystem (host services: netd chroots Resources there) as uid 65534: the
# interpreter is the node's /usr/bin/python3, which the slim image does not have.
import http.server
import os
import socket
import sys
import time

PORT = 8080
CONTROL = ('127.0.0.1', 8081)  # node-local: only processes on this node can stop it


def answers(timeout=0.3):
    try:
        with socket.create_connection(('127.0.0.1', PORT), timeout=timeout) as s:
            s.sendall(b'GET / HTTP/1.0\r\n\r\n')
            return s.recv(64).startswith(b'HTTP/1.0 200')
    except OSError:
        return False


def serve():
    name = open('/etc/heartline/node-name').read().strip().encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header('content-type', 'text/plain')
            self.send_header('content-length', str(len(name)))
            self.send_header('connection', 'close')
            self.end_headers()
            self.wfile.write(name)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(('0.0.0.0', PORT), Handler)
    control = socket.socket()
    control.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    control.bind(CONTROL)
    control.listen(1)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn, _ = control.accept()  # any connection on the control port: stop
    server.shutdown()
    server.server_close()
    conn.close()


def start():
    if answers():
        return 0
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fd = os.open('/dev/null', os.O_RDWR)
        for i in (0, 1, 2):
            os.dup2(fd, i)
        try:
            serve()
        finally:
            os._exit(0)
    for _ in range(100):
        if answers():
            return 0
        time.sleep(0.05)
    print('web stand-in: not answering on :%d after 5 s' % PORT, file=sys.stderr)
    return 1


def stop():
    try:
        socket.create_connection(CONTROL, timeout=1).close()
    except OSError:
        return 0  # not running
    for _ in range(100):
        if not answers():
            return 0
        time.sleep(0.05)
    return 1


if __name__ == '__main__':
    verb = sys.argv[1] if len(sys.argv) > 1 else ''
    if verb == 'start':
        sys.exit(start())
    if verb in ('stop', 'graceful-stop'):
        sys.exit(stop())
    if verb == 'status':
        sys.exit(0 if answers() else 3)
    print('usage: apache start|graceful-stop|status', file=sys.stderr)
    sys.exit(2)
