"""A test's client of the agents: fastmig's frames over TLS 1.3 with a
certificate of the fleet (docs/PKI.md). The PKI directory is FASTMIG_PKI,
else the testbed's."""
import json
import os
import socket
import ssl
import struct

PKI = os.environ.get("FASTMIG_PKI") or "/var/lib/fastmig/testbed/pki"


def frame(t, payload):
    return b"FM" + bytes([1, t]) + struct.pack(">I", len(payload)) + payload


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def context(cert="operator", pki=None, ca=None):
    pki = pki or PKI
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(ca or os.path.join(pki, "ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(pki, cert + ".crt"), os.path.join(pki, cert + ".key"))
    return ctx


def connect(addr, cert="operator", pki=None, timeout=30, ca=None):
    host, port = addr.split(":")
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    return context(cert, pki, ca).wrap_socket(raw, server_hostname=host)


def call(addr, req, cert="operator", pki=None, timeout=30):
    """The reply (a dict), or None when the agent closed the connection."""
    s = connect(addr, cert, pki, timeout)
    try:
        s.sendall(frame(1, json.dumps(req).encode()))
        h = recv_exact(s, 8)
        if h is None:
            return None
        return json.loads(recv_exact(s, struct.unpack(">I", h[4:])[0]))
    except (ssl.SSLError, ConnectionError):
        return None
    finally:
        s.close()
