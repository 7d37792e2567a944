#!/usr/bin/env python3
"""Coverage of the targets' ASNs: the embedded default snapshot against each
input source under asn/data/inputs/.

    python3 scripts/coverage.py > asn/data/inputs/COVERAGE.md

Run from the repository root. Standard library only. For every ASN it counts,
per source: prefixes as listed (for the range tables: the CIDRs of each range's
minimal cover), IPv4 addresses and IPv6 /48s (of the union, so overlaps count
once; a prefix longer than /48 counts its /48). "new" is what a source has that
the embedded default does not attribute to that ASN.
"""

import csv
import glob
import ipaddress
import json
import os
import re
import sys

BYTEDANCE = [396986, 11983, 398175, 138699, 137775, 137718, 150436]
BYTEDANCE_NAME_ONLY = [139158, 138419]
TENCENT = [45090, 132203, 132591, 133478, 137876, 58835, 9390]
# Found by a name match in a source, not a built-in seed.
DISCOVERED = {139341: "tencent"}

INPUTS = "asn/data/inputs"
DEFAULT = "asn/data/default.json"


def rng(net):
    """Inclusive integer range of a network."""
    return int(net.network_address), int(net.broadcast_address)


def add(store, asn, net):
    store.setdefault(asn, {4: [], 6: []})[net.version].append(net)


def read_default():
    with open(DEFAULT) as f:
        snap = json.load(f)
    per_asn, per_target = {}, {}
    for t in snap["targets"]:
        for p in t.get("prefixes", []):
            net = ipaddress.ip_network(p["prefix"])
            add(per_target, t["name"], net)
            for o in p.get("origins") or []:
                add(per_asn, o, net)
    return per_asn, per_target


def read_ipverse():
    per_asn = {}
    for path in sorted(glob.glob(os.path.join(INPUTS, "prefixes/ipverse/AS*"))):
        asn = int(re.match(r"AS(\d+)\.", os.path.basename(path)).group(1))
        if path.endswith(".json"):
            with open(path) as f:
                d = json.load(f)
            lists = d.get("prefixes") or d.get("subnets")
            nets = lists["ipv4"] + lists["ipv6"]
        else:
            nets = cidr_lines(path)
        for n in nets:
            add(per_asn, asn, ipaddress.ip_network(n))
    return per_asn


def cidr_lines(path):
    with open(path) as f:
        return [l.split("#")[0].strip() for l in f if l.split("#")[0].strip()]


def read_as_prefix():
    per_asn = {}
    for path in sorted(glob.glob(os.path.join(INPUTS, "prefixes/as-prefix/AS*"))):
        asn = int(os.path.basename(path)[2:])
        for n in cidr_lines(path):
            add(per_asn, asn, ipaddress.ip_network(n))
    return per_asn


def read_ip_location_db():
    per_asn = {}
    for path in sorted(glob.glob(os.path.join(INPUTS, "tables/ip-location-db/*.csv"))):
        with open(path, newline="") as f:
            for row in csv.reader(f):
                lo, hi = ipaddress.ip_address(row[0]), ipaddress.ip_address(row[1])
                for n in ipaddress.summarize_address_range(lo, hi):
                    add(per_asn, int(row[2]), n)
    return per_asn


def read_company_lists():
    per_target = {}
    for path in sorted(glob.glob(os.path.join(INPUTS, "prefixes/company/*.txt"))):
        tgt = os.path.basename(path).split(".")[0]
        for n in cidr_lines(path):
            add(per_target, tgt, ipaddress.ip_network(n))
    return per_target


FORMATS = [
    ("prefixes/ipverse/*.json", "ipverse JSON"),
    ("prefixes/ipverse/*.txt", "cidr (ipverse txt)"),
    ("prefixes/as-prefix/AS*", "cidr (AS-Prefix)"),
    ("prefixes/company/*.txt", "cidr (company list)"),
    ("tables/ip-location-db/*.csv", "ip2asn (ip-location-db CSV)"),
    ("tables/ip-location-db/*LICENSE", "licence text"),
    ("tables/ip-location-db/MODIFICATIONS", "licence text"),
    ("asns/*", "asnames / notes"),
    ("rpsl/*", "rpsl"),
    ("registry-samples/*", "rir delegated stats"),
]


def inventory():
    """(path, format, data rows, sha256) of every input file."""
    import fnmatch
    import hashlib
    out = []
    for root, _, files in os.walk(INPUTS):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, INPUTS)
            fmt = next((f for pat, f in FORMATS if fnmatch.fnmatch(rel, pat)), None)
            if fmt is None:
                continue
            with open(path, "rb") as f:
                data = f.read()
            lines = [l for l in data.decode().splitlines() if l.strip() and not l.startswith(("#", "%"))]
            if fmt == "ipverse JSON":
                d = json.loads(data)
                lists = d.get("prefixes") or d.get("subnets")
                rows = len(lists["ipv4"]) + len(lists["ipv6"])
            else:
                rows = len(lines)
            out.append((rel, fmt, rows, hashlib.sha256(data).hexdigest()))
    return sorted(out)


def merge(ranges):
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


def subtract(a, b):
    """Merged ranges a minus merged ranges b."""
    out, j = [], 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] < cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > cur:
                out.append([cur, b[k][0] - 1])
            cur = max(cur, b[k][1] + 1)
            k += 1
        if cur <= hi:
            out.append([cur, hi])
    return out


def v4_addrs(ranges):
    return sum(hi - lo + 1 for lo, hi in ranges)


def v6_48s(ranges):
    blocks = merge([[lo >> 80, hi >> 80] for lo, hi in ranges])
    return sum(hi - lo + 1 for lo, hi in blocks)


def space(nets):
    """(prefix count, v4 merged ranges, v6 merged ranges)."""
    if not nets:
        return 0, [], []
    return (len(nets[4]) + len(nets[6]),
            merge([rng(n) for n in nets[4]]),
            merge([rng(n) for n in nets[6]]))


def cell(nets, base=None):
    n, r4, r6 = space(nets)
    if n == 0:
        return "-"
    s = f"{n} / {v4_addrs(r4):,} / {v6_48s(r6):,}"
    if base is not None:
        _, b4, b6 = space(base)
        s += f" (new {v4_addrs(subtract(r4, b4)):,} / {v6_48s(subtract(r6, b6)):,})"
    return s


def union(*stores_asn):
    out = {4: [], 6: []}
    for nets in stores_asn:
        if nets:
            out[4] += nets[4]
            out[6] += nets[6]
    return out


def main():
    default, default_target = read_default()
    sources = [
        ("ipverse (all files)", read_ipverse()),
        ("as-prefix 2026-06-19", read_as_prefix()),
        ("ip-location-db 2.3.2026061719", read_ip_location_db()),
    ]
    w = sys.stdout.write
    w("# Coverage of the snapshot inputs\n\n")
    w("Generated by `python3 scripts/coverage.py` (run from the repository root) from\n"
      "`asn/data/default.json` and the files under `asn/data/inputs/`.\n"
      "Each cell: prefixes / IPv4 addresses / IPv6 /48s (of the union, overlaps counted once);\n"
      "\"new\" = IPv4 addresses / IPv6 /48s that the embedded default does not attribute to that ASN.\n"
      "\"-\" = nothing. The default column counts the prefixes whose `origins` include the ASN.\n\n")
    head = ["ASN", "target", "embedded default"] + [n for n, _ in sources] + ["all sources"]
    w("| " + " | ".join(head) + " |\n")
    w("|" + "---|" * len(head) + "\n")
    rows = ([(a, "bytedance") for a in BYTEDANCE] +
            [(a, "bytedance (name-only)") for a in BYTEDANCE_NAME_ONLY] +
            [(a, "tencent") for a in TENCENT] +
            [(a, f"{t} (name match, not a seed)") for a, t in DISCOVERED.items()])
    nothing = []
    for asn, tgt in rows:
        base = default.get(asn)
        cells = [cell(src.get(asn), base) for _, src in sources]
        allnets = union(*[src.get(asn) for _, src in sources])
        cells.append(cell(allnets if allnets[4] or allnets[6] else None, base))
        if not base and all(c == "-" for c in cells):
            nothing.append(asn)
        w(f"| AS{asn} | {tgt} | {cell(base)} | " + " | ".join(cells) + " |\n")

    companies = read_company_lists()
    w("\n## Per target\n\n")
    w("The embedded default's whole target (including prefixes without an origin, such as\n"
      "the Tencent cloud-range list) against each source: the union of the target's seed ASNs\n"
      "in the per-ASN sources, and the company-level lists under `prefixes/company/`.\n"
      "\"announced\" = every source but ip-location-db, whose IPv6 rows are RIR delegations.\n\n")
    cols = [n for n, _ in sources] + ["company lists", "announced (seed ASNs)", "all (seed ASNs)",
                                      "all + name-only / name-match ASNs"]
    w("| target | embedded default | " + " | ".join(cols) + " |\n")
    w("|" + "---|" * (len(cols) + 2) + "\n")
    for tgt, seeds, extra in (("bytedance", BYTEDANCE, BYTEDANCE_NAME_ONLY),
                              ("tencent", TENCENT, [a for a, t in DISCOVERED.items() if t == "tencent"])):
        base = default_target.get(tgt)
        per_src = [union(*[src.get(a) for a in seeds]) for _, src in sources]
        comp = companies.get(tgt)
        announced = union(comp, *[p for (n, _), p in zip(sources, per_src) if not n.startswith("ip-location-db")])
        every = union(comp, *per_src)
        plus = union(every, *[src.get(a) for _, src in sources for a in extra])
        cells = [cell(x if x and (x[4] or x[6]) else None, base)
                 for x in per_src + [comp, announced, every, plus]]
        w(f"| {tgt} | {cell(base)} | " + " | ".join(cells) + " |\n")

    w("\n## Input files\n\n")
    w("Rows: data lines without `#`/`%` comments (ipverse JSON: prefixes).\n\n")
    w("| file | format | rows | sha256 |\n|---|---|---|---|\n")
    for path, fmt, rows, digest in inventory():
        w(f"| `{path}` | {fmt} | {rows:,} | `{digest}` |\n")

    w("\n## ASNs with nothing in any source\n\n")
    w(", ".join(f"AS{a}" for a in nothing) if nothing else "none")
    w("\n\nNone of these has a prefix in the embedded default or in any source here. ipverse lists\n"
      "only ASes seen announcing in the last 90 days and has no directory for them in its history,\n"
      "the AS-Prefix table (every announcing AS on 2026-06-19) has no file for them, and the\n"
      "RouteViews-derived ip-location-db table has no row for them: as far as these sources see,\n"
      "they announce nothing.\n")


if __name__ == "__main__":
    main()
