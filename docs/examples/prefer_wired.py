#!/usr/bin/env python3
"""prefer_wired: an mptcpgod policy for the exec plugin (docs/plugins.md).

While the host has a wired path, every other path is kept as a backup: the
peer sends over Wi-Fi or cellular only when no wired subflow is left. With
--drop KIND, paths over links of that kind are not used at all.

It sits in a chain after a base policy that proposes the paths:

    [[policy.chain]]
    name = "fullmesh"
    [[policy.chain]]
    name = "exec"
    [policy.chain.config]
    command = ["/usr/bin/python3", "/etc/mptcpgod/prefer_wired.py", "--drop", "cellular"]

Standard library only. It reads one JSON object per line on standard input
and writes one per line on standard output; it logs to standard error.
"""

import argparse
import json
import sys
import traceback

VERSION = 1
KINDS = ("unknown", "wired", "wifi", "cellular", "virtual")


def link_kinds(view):
    """Map interface indexes and names to link kinds."""
    kinds = {}
    for link in view.get("links") or []:
        kinds[link.get("index")] = link.get("kind", "unknown")
        kinds[link.get("name")] = link.get("kind", "unknown")
    # An address's link, for items that name neither index nor device.
    by_addr = {}
    for a in view.get("addrs") or []:
        by_addr[a.get("addr")] = kinds.get(a.get("ifindex"), kinds.get(a.get("link"), "unknown"))
    return kinds, by_addr


def kind_of(item, addr_key, kinds, by_addr):
    """The kind of the link a path, endpoint or announce uses."""
    if item.get("ifindex"):
        return kinds.get(item["ifindex"], "unknown")
    if item.get("dev"):
        return kinds.get(item["dev"], "unknown")
    return by_addr.get(item.get(addr_key), "unknown")


def prefer_wired(items, addr_key, view, drop):
    """Drop items over the kinds in drop; while one is wired, back up the rest."""
    kinds, by_addr = link_kinds(view)
    kept = [(i, kind_of(i, addr_key, kinds, by_addr)) for i in items or []]
    kept = [(i, k) for i, k in kept if k not in drop]
    if any(k == "wired" for _, k in kept):
        for item, kind in kept:
            item["backup"] = kind != "wired"
    return [i for i, _ in kept]


def decide_conn(view, conn, plan, drop):
    """The plan for one connection (userspace mode)."""
    plan["paths"] = prefer_wired(plan.get("paths"), "local", view, drop)
    kinds, by_addr = link_kinds(view)
    plan["announces"] = [a for a in plan.get("announces") or []
                         if kind_of(a, "addr", kinds, by_addr) not in drop]
    return plan


def decide_kernel(view, plan, drop):
    """The in-kernel path manager's endpoints (kernel mode)."""
    plan["endpoints"] = prefer_wired(plan.get("endpoints"), "addr", view, drop)
    return plan


def answer(msg, drop):
    """The reply to one message."""
    kind = msg.get("type")
    if kind == "hello":
        if msg.get("version", 0) < VERSION:
            raise SystemExit("prefer_wired: the daemon speaks version %r, not %d" % (msg.get("version"), VERSION))
        return {"type": "hello", "version": VERSION, "name": "prefer-wired"}
    if kind == "conn":
        plan = decide_conn(msg["view"], msg["conn"], msg["next"], drop)
    elif kind == "kernel":
        plan = decide_kernel(msg["view"], msg["next"], drop)
    else:
        return {"type": "error", "id": msg.get("id"), "message": "unknown request type %r" % kind}
    return {"type": kind, "id": msg["id"], "plan": plan}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drop", action="append", default=[], choices=KINDS,
                        help="never use links of this kind (repeatable)")
    args = parser.parse_args()
    drop = set(args.drop)

    for line in sys.stdin:
        msg = None
        try:
            msg = json.loads(line)
            reply = answer(msg, drop)
        except SystemExit:
            raise
        except Exception as e:  # a bug here must not stop the plugin
            traceback.print_exc(file=sys.stderr)
            req = msg.get("id") if isinstance(msg, dict) else None
            reply = {"type": "error", "id": req, "message": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    # End of input: the daemon stopped us.


if __name__ == "__main__":
    main()
