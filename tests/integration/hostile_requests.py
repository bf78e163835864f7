#!/usr/bin/env python3
"""Requests an attacker who reaches an agent's port would send, each a
finding of an earlier review; run from the testbed's core (and, for the
second peer, from mec2). Usage: hostile_requests.py STEP ADDR:PORT [ARGS]
Each step prints one line and exits non-zero when the agent misbehaves."""
import json
import socket
import struct
import sys
import time


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


def call(addr, req, timeout=30):
    host, port = addr.split(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.sendall(frame(1, json.dumps(req).encode()))
    h = recv_exact(s, 8)
    if h is None:
        return None
    body = recv_exact(s, struct.unpack(">I", h[4:])[0])
    s.close()
    return json.loads(body)


def expect_error(addr, req, needle, what):
    rep = call(addr, req)
    if not rep or rep.get("ok") or needle not in rep.get("error", ""):
        sys.exit("FAIL: %s: reply %r" % (what, rep))
    print("ok: %s (%s)" % (what, rep["error"]))


def main():
    step, addr = sys.argv[1], sys.argv[2]
    if step == "config":
        # an LXC hook is root on the target host: refused, nothing stored
        cfg = "lxc.uts.name = hook\nlxc.net.0.type = veth\nlxc.hook.start-host = /bin/sh -c 'touch /tmp/fm-owned'\n"
        expect_error(addr, {"op": "prepare", "name": "hook", "config": cfg}, "lxc.hook.start-host",
                     "prepare with an lxc.hook line")
        cfg = "lxc.uts.name = bind\nlxc.mount.entry = /etc etc none bind 0 0\n"
        expect_error(addr, {"op": "prepare", "name": "bind", "config": cfg}, "allow-list",
                     "prepare binding the host's /etc")
        # the old relocation looped forever on an empty source path
        t = time.time()
        rep = call(addr, {"op": "prepare", "name": "empty", "src_lxcpath": "",
                          "config": "lxc.uts.name = empty\nlxc.net.0.type = veth\n"}, timeout=10)
        if rep is None or time.time() - t > 5:
            sys.exit("FAIL: prepare with an empty src_lxcpath did not answer at once")
        print("ok: prepare with an empty src_lxcpath answered in %.2f s" % (time.time() - t))
        rep = call(addr, {"op": "abort", "name": "empty"})
        if not rep or not rep.get("ok"):
            sys.exit("FAIL: abort of the container this peer prepared: %r" % rep)
    elif step == "not-incoming":
        # NAME runs here and no migration brings it: nobody may abort it,
        # overwrite its config, or feed it images
        name = sys.argv[3]
        expect_error(addr, {"op": "abort", "name": name}, "not a container a migration is bringing",
                     "abort of a running container")
        expect_error(addr, {"op": "restore", "name": name}, "not a container a migration is bringing",
                     "restore into a running container")
        expect_error(addr, {"op": "finish", "name": name}, "not a container a migration is bringing",
                     "finish of a running container")
        expect_error(addr, {"op": "prepare", "name": name, "config": "lxc.uts.name = %s\n" % name},
                     "already runs", "prepare over a running container")
    elif step == "prepare":
        rep = call(addr, {"op": "prepare", "name": sys.argv[3],
                          "config": "lxc.uts.name = %s\nlxc.net.0.type = veth\n" % sys.argv[3]})
        if not rep or not rep.get("ok"):
            sys.exit("FAIL: prepare: %r" % rep)
        print("ok: prepared %s" % sys.argv[3])
    elif step == "other-peer":
        name = sys.argv[3]
        expect_error(addr, {"op": "abort", "name": name}, "is being brought by",
                     "abort from a peer that did not prepare it")
        expect_error(addr, {"op": "put_images", "name": name}, "is being brought by",
                     "images from a peer that did not prepare it")
    elif step == "abort":
        rep = call(addr, {"op": "abort", "name": sys.argv[3]})
        if not rep or not rep.get("ok"):
            sys.exit("FAIL: abort by the peer that prepared it: %r" % rep)
        print("ok: aborted by the peer that prepared it")
    elif step == "flood":
        # more silent connections than the agent serves: the extra ones are
        # told so at once; the silent ones are dropped after the first-frame
        # timeout, and the agent serves again
        host, port = addr.split(":")
        socks = []
        for _ in range(64):
            socks.append(socket.create_connection((host, int(port)), timeout=30))
        time.sleep(0.5)
        rep = call(addr, {"op": "ping"}, timeout=5)
        if not rep or rep.get("ok") or "try again later" not in rep.get("error", ""):
            sys.exit("FAIL: connection 65 got %r" % rep)
        print("ok: connection 65 refused at once (%s)" % rep["error"])
        t = time.time()
        socks[0].settimeout(30)
        h = socks[0].recv(8)
        waited = time.time() - t
        if h != b"" and h[:2] != b"FM":
            sys.exit("FAIL: a silent client got %r" % h)
        if waited > 20:
            sys.exit("FAIL: a silent client was held %.1f s" % waited)
        print("ok: a silent client was dropped after %.1f s more" % waited)
        for s in socks:
            s.close()
        time.sleep(0.5)
        rep = call(addr, {"op": "ping"}, timeout=5)
        if not rep or not rep.get("ok"):
            sys.exit("FAIL: the agent does not serve after the flood: %r" % rep)
        print("ok: the agent serves again")
    else:
        sys.exit("unknown step " + step)


main()
