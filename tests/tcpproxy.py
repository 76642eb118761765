"""A TCP proxy that a test puts between the service and PostgreSQL, to break the network on
purpose without touching the database server.

- `cut()`: close every open connection and go on accepting (a blip: the server restarted,
  a NAT entry expired).
- `stop()`: close every connection and stop listening; connecting is refused.
- `blackhole()`: close every connection; new ones are accepted but nothing is forwarded or
  answered (a firewall that drops packets, from a new connection's point of view).
- `forward()`: listen again if needed, and forward new connections.
"""

import selectors
import socket
import threading


class TcpProxy:
    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.mode = "forward"
        self._lock = threading.Lock()
        self._open = set()  # every socket of a proxied or held connection, both ends
        self._listener = None
        self._closing = threading.Event()
        self.port = None
        self._listen()

    @property
    def address(self):
        return "127.0.0.1", self.port

    def cut(self):
        self._close_connections()

    def stop(self):
        with self._lock:
            self.mode = "stopped"
            listener, self._listener = self._listener, None
        if listener is not None:
            _shut(listener)  # shutdown wakes the thread blocked in accept(); close alone does not
        self._close_connections()

    def blackhole(self):
        with self._lock:
            self.mode = "blackhole"
        self._close_connections()

    def forward(self):
        with self._lock:
            self.mode = "forward"
        if self._listener is None:
            self._listen()

    def close(self):
        self._closing.set()
        self.stop()

    def _listen(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener):
        while not self._closing.is_set():
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed by stop()
                return
            with self._lock:
                mode = self.mode
                self._open.add(client)
            if mode == "forward":
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()
            # In blackhole mode the connection stays open and unread until the next cut.

    def _relay(self, client):
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self._discard(client)
            return
        server.settimeout(None)
        with self._lock:
            self._open.add(server)
        selector = selectors.DefaultSelector()
        try:
            selector.register(client, selectors.EVENT_READ, server)
            selector.register(server, selectors.EVENT_READ, client)
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        # One side was cut: while relaying (OSError), or already while this thread connected
        # upstream (registering a closed socket is a ValueError).
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            self._discard(client)
            self._discard(server)

    def _close_connections(self):
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _shut(sock)

    def _discard(self, sock):
        with self._lock:
            self._open.discard(sock)
        _shut(sock)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
