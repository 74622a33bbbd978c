#!/usr/bin/python3
"""Seed corpora and dictionaries for tests/fuzz's harnesses, made from `recon5t phantom` output.

usage: make_seeds.py RECON5T OUTDIR

Writes OUTDIR/<harness>/ seeds (nothing generated is committed) and OUTDIR/<harness>.dict:
  kspace        length-prefixed Acquisition frames of the 16x16 phantom (fuzz_kspace's header)
  scan_message  length-prefixed ScanMessage frames (2-byte LE length each): header, batches, End
                of a 16x16 4-coil Cartesian phantom and of a 32-sample radial one
  header        the phantoms' ISMRMRD XML headers; header.dict: their element names
  cfl           a .hdr/.cfl pair in fuzz_cfl's framing (1 byte .hdr length, .hdr, .cfl)
  tokens        a tokens file (token and cert lines); tokens.dict: the roles
  config        a recon5td config with every key; config.dict: the keys (service/server/config.c)
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
os.environ.setdefault("R5_SOURCE", SOURCE)
import numpy as np  # noqa: E402
import svc_common as sc  # noqa: E402


def frames(messages):
    out = b""
    for m in messages:
        raw = m.SerializeToString()
        if len(raw) > 0xFFFF:
            raise SystemExit("make_seeds: a ScanMessage of %d bytes does not fit a frame" % len(raw))
        out += struct.pack("<H", len(raw)) + raw
    return out


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    recon5t, outdir = sys.argv[1], sys.argv[2]
    for h in ("scan_message", "kspace", "header", "cfl", "config", "tokens"):
        os.makedirs(os.path.join(outdir, h), exist_ok=True)
    tags = set()
    with tempfile.TemporaryDirectory() as work:
        pb, _ = sc.load_protos(work)
        scans = [("cart", ["--matrix", "16", "--coils", "4", "--calib", "8", "--noise", "0.01", "--noise-samples", "64"]),
                 ("radial", ["--kind", "dynamic", "--matrix", "16", "--coils", "2", "--frames", "2",
                             "--frame-spokes", "4", "--calib", "8", "--noise-samples", "64"])]
        for name, args in scans:
            path = os.path.join(work, name + ".h5")
            r = subprocess.run([recon5t, "phantom", "--out", path] + args, capture_output=True)
            if r.returncode != 0:
                if name == "cart":
                    raise SystemExit("make_seeds: recon5t phantom failed: " + r.stderr.decode(errors="replace"))
                print("make_seeds: no radial seed: " + r.stderr.decode(errors="replace").strip())
                continue
            xml, records = sc.read_scan(path)
            write(os.path.join(outdir, "header", name + ".xml"), xml.encode())
            tags.update(re.findall(r"<([A-Za-z_][A-Za-z0-9_]*)", xml))
            write(os.path.join(outdir, "scan_message", name + ".bin"),
                  frames(sc.scan_messages(pb, xml, records, batch=8)))
            write(os.path.join(outdir, "scan_message", name + "_head.bin"),
                  frames(sc.scan_messages(pb, xml, records[:3], batch=2)))
            if name == "cart":  # fuzz_kspace's fixed header is this phantom's (regressions/header/cart.xml)
                acqs = [sc.acquisition(pb, r) for r in records]
                write(os.path.join(outdir, "kspace", "cart.bin"), frames(acqs))
                write(os.path.join(outdir, "kspace", "cart_few.bin"), frames(acqs[:4] + acqs[-2:]))
    with open(os.path.join(outdir, "header.dict"), "w") as f:
        for t in sorted(tags):
            f.write('"<%s>"\n"</%s>"\n' % (t, t))
    hdr = b"# Dimensions\n4 3 1 2 \n"
    write(os.path.join(outdir, "cfl", "small"),
          bytes([len(hdr)]) + hdr + np.arange(48, dtype="<f4").tobytes())
    with open(os.path.join(SOURCE, "service", "server", "config.c")) as f:
        keys = re.findall(r"^\s*(?:STR|NUM)\(([a-z_]+),", f.read(), re.M)
    with open(os.path.join(outdir, "config.dict"), "w") as f:
        for k in keys:
            f.write('"%s"\n' % k)
        f.write('"="\n"#"\n"["\n"]"\n')
    conf = "# seed\n[server]\n" + "".join("%s = %s\n" % (k, "1") for k in keys)
    write(os.path.join(outdir, "config", "all_keys.conf"), conf.encode())
    write(os.path.join(outdir, "config", "small.conf"), b"listen = 127.0.0.1:50051\nworkers = 2\nlog_level = warn\n")
    write(os.path.join(outdir, "tokens", "lines.txt"),
          b"# recon5t token lines\nresearch lab-7 " + b"ab" * 16 + b" " + b"cd" * 32 + b"\n"
          b"admin ops " + b"01" * 16 + b" " + b"ef" * 32 + b"  # comment\r\n\ncert console scanner-1\n")
    with open(os.path.join(outdir, "tokens.dict"), "w") as f:
        f.write('"console"\n"research"\n"monitor"\n"admin"\n"cert"\n"#"\n')
    write(os.path.join(outdir, "tokens", "lines.txt"),
          b"# recon5t token lines\nresearch lab-7 " + b"ab" * 16 + b" " + b"cd" * 32 + b"\n"
          b"admin ops " + b"01" * 16 + b" " + b"ef" * 32 + b"  # comment\r\n\ncert console scanner-1\n")
    with open(os.path.join(outdir, "tokens.dict"), "w") as f:
        f.write('"console"\n"research"\n"monitor"\n"admin"\n"cert"\n"#"\n')
    print("make_seeds: %s (%d header tags, %d config keys)" % (outdir, len(tags), len(keys)))


if __name__ == "__main__":
    main()
