#!/usr/bin/env python3
"""Seed the whole-input-path fuzz corpora (issue 14) from the project's own fixtures.

capture_input / tarball_input take files separated by b"\\0\\n", each starting with one byte
that selects its name from CAPTURE_NAMES / ELC_NAMES in fuzz_targets/common/mod.rs (kept in
the same order here). Run from the repository root; rewrites fuzz/corpus/<target>/seed-*.
"""
import io, os, re, sys, tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
common = open(os.path.join(ROOT, "fuzz/fuzz_targets/common/mod.rs")).read()

def names(const):
    body = re.search(r"pub const %s: &\[&str\] = &\[(.*?)\];" % const, common, re.S).group(1)
    return re.findall(r'"([^"]+)"', body)

CAPTURE, ELC = names("CAPTURE_NAMES"), names("ELC_NAMES")
CAP = 8192

def pack(files, table):
    out = []
    for name, data in files:
        if name in table:
            out.append(bytes([table.index(name)]) + data[:CAP])
    return b"\0\n".join(out)

def write(target, name, data):
    d = os.path.join(ROOT, "fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

# capture_input: each fixture capture directory, lower-cased names as classify_capture sees them.
lower = {n.lower(): n for n in CAPTURE}
for base in ["diag/tests/fixtures/captures"]:
    for node in sorted(os.listdir(os.path.join(ROOT, base))):
        d = os.path.join(ROOT, base, node)
        files = []
        for f in sorted(os.listdir(d)):
            if f.lower() in lower:
                files.append((lower[f.lower()], open(os.path.join(d, f), "rb").read()))
        for i in range(0, len(files), 6):
            write("capture_input", f"{node}-{i // 6}", pack(files[i:i + 6], CAPTURE))

# snapshot_input: the TUI's snapshot fixtures.
d = os.path.join(ROOT, "tui/tests/fixtures")
for f in sorted(os.listdir(d)):
    if f.endswith(".json"):
        write("snapshot_input", f, open(os.path.join(d, f), "rb").read())

# tarball_input: the members of the eks-log-collector fixture(s).
for dirpath, _, fs in os.walk(os.path.join(ROOT, "diag/tests/fixtures/elc")):
    for f in fs:
        if not f.endswith(".tar.gz"):
            continue
        files = []
        with tarfile.open(os.path.join(dirpath, f)) as t:
            for m in t.getmembers():
                rel = m.name.split("/", 1)[1] if "/" in m.name else m.name
                if m.isfile() and rel in ELC:
                    files.append((rel, t.extractfile(m).read()))
        for i in range(0, len(files), 8):
            write("tarball_input", f"{f[:-7]}-{i // 8}", pack(files[i:i + 8], ELC))
print("seeded", file=sys.stderr)
