#!/usr/bin/env python3
"""Requests an attacker who reaches an agent's port would send, each a
finding of an earlier review; run from the testbed's core. Usage:
hostile_requests.py STEP ADDR:PORT [ARGS]. The peer is a host of the fleet
(mec2's certificate) unless a step says otherwise: even an authenticated
peer gets no further than its role and its own migrations. Each step
prints what it checked and exits non-zero when the agent misbehaves."""
import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from fmtls import PKI, call, connect  # noqa: E402


def expect_error(addr, req, needle, what, cert="mec2"):
    rep = call(addr, req, cert)
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
                          "config": "lxc.uts.name = empty\nlxc.net.0.type = veth\n"}, "mec2", timeout=10)
        if rep is None or time.time() - t > 5:
            sys.exit("FAIL: prepare with an empty src_lxcpath did not answer at once")
        print("ok: prepare with an empty src_lxcpath answered in %.2f s" % (time.time() - t))
        rep = call(addr, {"op": "abort", "name": "empty"}, "mec2")
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
        expect_error(addr, {"op": "rsync", "name": name, "part": "rootfs"},
                     "not a container a migration is bringing", "rsync into a running container's rootfs")
        expect_error(addr, {"op": "lazy_pages", "name": name}, "not a container a migration is bringing",
                     "a page server for a running container")
    elif step == "prepare":
        rep = call(addr, {"op": "prepare", "name": sys.argv[3],
                          "config": "lxc.uts.name = %s\nlxc.net.0.type = veth\n" % sys.argv[3]}, "mec2")
        if not rep or not rep.get("ok"):
            sys.exit("FAIL: prepare: %r" % rep)
        print("ok: prepared %s" % sys.argv[3])
    elif step == "other-peer":
        # another host of the fleet (certificate "intruder", issued by the test)
        name = sys.argv[3]
        expect_error(addr, {"op": "abort", "name": name}, "is being brought by mec2",
                     "abort from a host that did not prepare it", "intruder")
        expect_error(addr, {"op": "put_images", "name": name}, "is being brought by mec2",
                     "images from a host that did not prepare it", "intruder")
        expect_error(addr, {"op": "rsync", "name": name, "part": "rootfs"}, "is being brought by mec2",
                     "rsync from a host that did not prepare it", "intruder")
        expect_error(addr, {"op": "lazy_pages", "name": name}, "is being brought by mec2",
                     "a page server asked for by a host that did not prepare it", "intruder")
        # the peer that prepared it: only the container's own trees, and
        # only images it staged
        expect_error(addr, {"op": "rsync", "name": name, "part": "../lxc"}, "bad part",
                     "rsync into another part of the host")
        expect_error(addr, {"op": "rsync", "image": "0" * 32}, "not being staged",
                     "rsync into an image nobody staged")
        expect_error(addr, {"op": "rsync", "image": "../" + "0" * 29}, "bad image digest",
                     "rsync into an image named with a path")
    elif step == "staging":
        # an image being staged here by mec2 is mec2's: another host can
        # neither take the staging over, nor commit it, nor watch it
        im = {"name": "staged", "kind": "base", "digest": sys.argv[3], "bytes": 4096}
        rep = call(addr, {"op": "image_stage", "image": im, "fresh": True}, "mec2")
        if not rep or not rep.get("ok"):
            sys.exit("FAIL: image_stage by mec2: %r" % rep)
        print("ok: mec2 stages image %s" % sys.argv[3][:12])
        expect_error(addr, {"op": "image_stage", "image": im, "fresh": True}, "being staged on mec1 by another host",
                     "another host staging the same image", "intruder")
        expect_error(addr, {"op": "image_commit", "image": im}, "is not being staged on mec1 by intruder",
                     "another host committing it", "intruder")
        expect_error(addr, {"op": "image_progress", "image": im}, "is not being staged on mec1 by intruder",
                     "another host watching it", "intruder")
    elif step == "abort":
        rep = call(addr, {"op": "abort", "name": sys.argv[3]}, "mec2")
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
        t = time.time()
        try:
            rep = call(addr, {"op": "ping"}, "mec2", timeout=5)
        except (ssl.SSLError, OSError):
            rep = None
        if rep is not None or time.time() - t > 2:
            sys.exit("FAIL: connection 65 got %r after %.1f s" % (rep, time.time() - t))
        print("ok: connection 65 closed at once")
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
        rep = call(addr, {"op": "ping"}, "mec2", timeout=5)
        if not rep or not rep.get("ok"):
            sys.exit("FAIL: the agent does not serve after the flood: %r" % rep)
        print("ok: the agent serves again")
    elif step == "roles":
        # a host may do what a migration's source does, not what the operator does
        expect_error(addr, {"op": "migrate", "name": "victim", "to": "10.77.2.2"}, "not for host mec2",
                     "a host asking for a migration")
        expect_error(addr, {"op": "destroy", "name": "victim"}, "not for host mec2", "a host destroying a container")
        expect_error(addr, {"op": "prepare", "name": "x", "config": ""}, "not for operator",
                     "the operator preparing as if it were a source", "operator")
        expect_error(addr, {"op": "rsync", "name": "x", "part": "rootfs"}, "not for operator",
                     "the operator writing a tree as if it were a source", "operator")
        expect_error(addr, {"op": "lazy_pages", "name": "x"}, "not for operator",
                     "the operator asking for a page server", "operator")
    elif step == "tls":
        # no certificate, or one of another fleet: no request gets through
        for what, kw in (("no certificate", {"cert": None}), ("another fleet's certificate", {"pki": sys.argv[3], "ca": os.path.join(PKI, "ca.crt")})):
            try:
                s = connect(addr, timeout=5, **kw)
                s.sendall(b"FM\x01\x01\x00\x00\x00\x0e{\"op\":\"ping\"}")
                got = s.recv(8)
            except (ssl.SSLError, ConnectionError, OSError):
                got = b""
            if got:
                sys.exit("FAIL: a client with %s got an answer: %r" % (what, got))
            print("ok: a client with %s gets nothing" % what)
    else:
        sys.exit("unknown step " + step)


main()
