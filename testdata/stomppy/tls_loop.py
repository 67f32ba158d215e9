"""Connect to stompbox over STOMP+TLS with stomp.py again and again.

Run by stomppy_tls_test.go with Debian's python3-stomp (issue 26):

    /usr/bin/python3 testdata/stomppy/tls_loop.py HOST PORT CA_FILE COUNT

Each round opens a stomp.py connection over TLS (the default TLS version,
1.3 where both ends have it), verifies the server against CA_FILE,
CONNECTs with $STOMPBOX_LOGIN and $STOMPBOX_PASSCODE, SENDs one message
with a receipt and waits for the RECEIPT, then DISCONNECTs with a receipt.
The script prints one JSON line: the rounds run, the TLS versions they
used, the failures, the slowest rounds and the longest round's seconds.
It gives up after MAX_FAILURES failed rounds, and exits 0 whenever it
could count: the Go test judges the figures.

stomp.py's own waits (connect(wait=True), WaitingListener) have no time
limit, so the script waits on its own listener with $STOMPBOX_STEP_TIMEOUT
seconds (default 5) per step: a stalled CONNECT (issue 26: the server gives
up after 10 s) costs seconds, not the test's whole time budget.

stomp.py 8 reads a TLS socket in its receiver thread while the caller's
thread writes to it, which OpenSSL does not allow (fixed in stomp.py 9.0.0,
jasonrbriggs/stomp.py#450 and #452). Issue 26's stall came from that, and
the server avoids it by sending no session tickets (listenStompTLS in
tls.go). One more case is the client's alone: on the DISCONNECT receipt the
receiver thread shuts TLS down and closes the socket while the caller's
SSL_write may not have returned yet; 4 of about 80 processes running 200
rounds died with "free(): corrupted unsorted chunks" there (as in
jasonrbriggs/stomp.py#327). The script makes that close wait until the
DISCONNECT write has returned (see one_round); nothing else about stomp.py
is changed.
"""

import json
import logging
import os
import sys
import threading
import time

import stomp

# MAX_FAILURES ends the loop early: past it, more failed rounds add only time.
MAX_FAILURES = 20


class Events(stomp.ConnectionListener):
    """Turns stomp.py's callbacks into events a round can wait on."""

    def __init__(self):
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.receipts = {}
        self.errors = []
        self.lock = threading.Lock()

    def receipt(self, rid):
        with self.lock:
            return self.receipts.setdefault(rid, threading.Event())

    def on_connected(self, frame):
        self.connected.set()

    def on_receipt(self, frame):
        self.receipt(frame.headers.get("receipt-id", "")).set()

    def on_error(self, frame):
        self.errors.append(frame.headers.get("message", frame.body))

    def on_disconnected(self):
        self.disconnected.set()


def one_round(host, port, ca_file, login, passcode, step_timeout, n, versions):
    """Runs one connect, send, disconnect; returns an error string or None.
    It adds the TLS version the round used to the set versions."""
    conn = stomp.Connection([(host, port)], heartbeats=(0, 0))
    conn.set_ssl(for_hosts=[(host, port)], ca_certs=ca_file)
    ev = Events()
    conn.set_listener("events", ev)
    closing = threading.Lock()
    disconnect_socket = conn.transport.disconnect_socket

    def disconnect_socket_after_write():
        with closing:
            disconnect_socket()

    conn.transport.disconnect_socket = disconnect_socket_after_write
    try:
        conn.connect(login, passcode, wait=False)
        if not ev.connected.wait(step_timeout):
            return "no CONNECTED in %gs (errors %s)" % (step_timeout, ev.errors)
        sock = conn.transport.socket
        if sock is not None:
            versions.add(sock.version())
        rid = "send-%d" % n
        conn.send("/topic/stomppy", "round %d" % n, receipt=rid)
        if not ev.receipt(rid).wait(step_timeout):
            return "no RECEIPT for SEND in %gs (errors %s)" % (step_timeout, ev.errors)
        # The receiver thread closes the socket when the RECEIPT comes; hold
        # that back until the write has returned (see the module comment).
        # receipt=None: disconnect only sends, with a receipt of its own,
        # and does not wait for the receiver thread, which needs the lock.
        with closing:
            conn.disconnect()
        if not ev.disconnected.wait(step_timeout):
            return "not disconnected in %gs" % step_timeout
        return None
    except Exception as e:  # any failure counts; the loop goes on
        return "%s: %s" % (type(e).__name__, e)
    # A failed round's connection is left to the server to close: closing it
    # here, beside the receiver thread, is the unsafe thing described above.


def main():
    host, port, ca_file, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    login = os.environ.get("STOMPBOX_LOGIN", "")
    passcode = os.environ.get("STOMPBOX_PASSCODE", "")
    step_timeout = float(os.environ.get("STOMPBOX_STEP_TIMEOUT", "5"))
    logging.basicConfig(level=logging.CRITICAL)  # failures go in the JSON line, not stomp.py's log

    rounds, failures, versions = [], [], set()
    for n in range(count):
        start = time.monotonic()
        err = one_round(host, port, ca_file, login, passcode, step_timeout, n, versions)
        took = time.monotonic() - start
        rounds.append((took, n))
        if err is not None:
            failures.append({"round": n, "seconds": round(took, 3), "error": err})
            if len(failures) >= MAX_FAILURES:
                break
    rounds.sort(reverse=True)
    print(json.dumps({
        "stomppy": ".".join(str(v) for v in stomp.__version__),
        "count": len(rounds),
        "tls_versions": sorted(versions),
        "failed": len(failures),
        "failures": failures,
        "max_seconds": round(rounds[0][0], 3) if rounds else 0,
        "slowest": [{"round": n, "seconds": round(s, 3)} for s, n in rounds[:5]],
    }))


if __name__ == "__main__":
    main()
