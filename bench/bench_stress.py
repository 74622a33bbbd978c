#!/usr/bin/python3
"""Bounded stress run of recon5td against hostile clients (loopback only).

Two mutating clients send streams made from a valid phantom scan and broken on purpose: flipped,
cut or appended bytes of serialized messages; header XML with random characters and absurd
numbers (matrix sizes, encodingLimits, channel counts, nan); acquisitions with random counters,
sample and channel counts, flags and truncated payloads; parameters with random keys and
non-finite values; a second header, batches before the header, no End, streams abandoned with a
50 ms deadline. A third client sends the valid scan between them and must always get its images.
Prints a table: streams per outcome, crashes (0 required), the valid scans' success rate and the
server's resident memory (baseline after a warm-up, peak, after the run).

  /usr/bin/python3 bench/bench_stress.py [--streams 3000] [--seconds 600] [--seed 1]
(R5_BIN = the build folder, default build/.) tests/integration/test_service_stress.py runs a short
version in the suite."""
import argparse
import collections
import os
import random
import re
import sys
import threading
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("R5_BIN", os.path.join(HERE, "..", "build"))
os.environ.setdefault("R5_SOURCE", os.path.join(HERE, ".."))
import svc_common as sc  # noqa: E402

NUMBERS = ["0", "-1", "1", "65535", "2147483647", "4294967296", "1e30", "nan", "inf", "-0", "3.5", "", "x"]


def mutate_xml(rng, xml):
    choice = rng.randrange(5)
    if choice == 0:  # random characters replaced
        chars = list(xml)
        for _ in range(rng.randint(1, 20)):
            chars[rng.randrange(len(chars))] = chr(rng.choice([0x3C, 0x3E, 0x26, 0x22, 0x20, 0x41, 0xE9, 0x0A]))
        return "".join(chars)
    if choice == 1:  # one number replaced by an absurd one
        spots = [m.span(1) for m in re.finditer(r">(-?[0-9.]+)<", xml)]
        a, b = rng.choice(spots)
        return xml[:a] + rng.choice(NUMBERS) + xml[b:]
    if choice == 2:  # cut
        return xml[:rng.randrange(len(xml))]
    if choice == 3:  # an element removed
        tags = re.findall(r"<([A-Za-z]+)>", xml)
        tag = rng.choice(tags)
        return re.sub(r"<%s>.*?</%s>" % (tag, tag), "", xml, count=1, flags=re.S)
    return xml.replace("<encodingLimits>", "<encodingLimits><slice><minimum>0</minimum><maximum>%s</maximum>"
                       "<center>0</center></slice>" % rng.choice(NUMBERS), 1)


def mutate_acquisition(rng, acq):
    field = rng.choice(["number_of_samples", "active_channels", "discard_pre", "discard_post", "center_sample",
                        "flags", "k1", "k2", "slice", "contrast", "data", "trajectory_dimensions"])
    big = rng.choice([0, 1, 2, 31, 255, 65535, 2 ** 31 - 1, 2 ** 32 - 1])
    if field == "k1":
        acq.idx.kspace_encode_step_1 = big
    elif field == "k2":
        acq.idx.kspace_encode_step_2 = big
    elif field in ("slice", "contrast"):
        setattr(acq.idx, field, big)
    elif field == "data":
        acq.data = acq.data[:rng.randrange(len(acq.data) + 1)]
    elif field == "flags":
        acq.flags = rng.getrandbits(64)
    else:
        setattr(acq, field, big & 0xFFFF if field in ("active_channels", "discard_pre", "discard_post",
                                                      "center_sample", "trajectory_dimensions") else big)


def hostile_stream(rng, pb, xml, acquisitions):
    """(messages, raw, timeout): one broken stream."""
    kind = rng.randrange(8)
    header = pb.ScanHeader(ismrmrd_xml=xml, client_job_id="stress")
    batches = []
    for start in range(0, len(acquisitions), 16):
        b = pb.AcquisitionBatch()
        for a in acquisitions[start:start + 16]:
            b.acquisitions.add().CopyFrom(a)
        batches.append(b)
    end = pb.ScanMessage(end=pb.End())
    timeout = 10.0
    if kind == 0:
        header.ismrmrd_xml = mutate_xml(rng, xml)
    elif kind == 1:
        for _ in range(rng.randint(1, 4)):
            b = rng.choice(batches)
            mutate_acquisition(rng, b.acquisitions[rng.randrange(len(b.acquisitions))])
    elif kind == 2:
        header.parameters.add(key=rng.choice(["lambda", "iters", "espirit_crop", "maps", "bogus", "pipeline"]),
                              value=rng.choice(NUMBERS + ["sense", "grappa"]))
    elif kind == 3:  # order broken
        msgs = [pb.ScanMessage(batch=batches[0]), pb.ScanMessage(header=header)] if rng.random() < 0.5 else \
            [pb.ScanMessage(header=header), pb.ScanMessage(header=header)]
        return [m.SerializeToString() for m in msgs], True, timeout
    elif kind == 4:  # abandoned: a deadline that passes mid-stream
        timeout = 0.05
    msgs = [pb.ScanMessage(header=header)] + [pb.ScanMessage(batch=b) for b in batches]
    if kind != 5:  # kind 5: no End
        msgs.append(end)
    data = [m.SerializeToString() for m in msgs]
    if kind in (6, 7):  # bytes flipped, cut or appended
        i = rng.randrange(len(data))
        raw = bytearray(data[i])
        op = rng.randrange(3)
        if op == 0:
            for _ in range(rng.randint(1, 8)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif op == 1:
            raw = raw[:rng.randrange(len(raw))]
        else:
            raw += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        data[i] = bytes(raw)
    return data, True, timeout


def run(streams, seconds, seed, quiet=False):
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, matrix="32", coils=2)
        xml, records = sc.read_scan(scan)
        acquisitions = [sc.acquisition(pb, r) for r in records]
        server = sc.Server(work, pb, hpb, ["--workers", "1", "--max-streams", "16", "--ingest-idle-s", "2",
                                           "--memory-budget-mb", "256", "--log-level", "warn"])
        outcomes = collections.Counter()
        suspicious = []
        valid = {"ok": 0, "failed": 0}
        lock = threading.Lock()
        sent = [0]
        deadline = time.time() + seconds
        try:
            events, code, details = server.reconstruct(sc.scan_messages(pb, xml, records), timeout=60)
            assert code == grpc.StatusCode.OK, (code, details)
            time.sleep(0.5)
            baseline = server.rss_kb()
            peak = [baseline]

            def mutator(index):
                rng = random.Random(seed * 1000 + index)
                while time.time() < deadline:
                    with lock:
                        if sent[0] >= streams:
                            return
                        sent[0] += 1
                    msgs, raw, timeout = hostile_stream(rng, pb, xml, acquisitions)
                    events, code, details = server.reconstruct(iter(msgs), timeout=timeout, raw=raw)
                    with lock:
                        outcomes[code.name] += 1
                        if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN) and len(suspicious) < 10:
                            suspicious.append("%s %s" % (code.name, details[:160]))

            def legitimate():
                while time.time() < deadline and sent[0] < streams:
                    events, code, details = server.reconstruct(sc.scan_messages(pb, xml, records), timeout=60)
                    images = sum(1 for e in events if e.WhichOneof("kind") == "image")
                    with lock:
                        valid["ok" if code == grpc.StatusCode.OK and images else "failed"] += 1
                    time.sleep(0.05)

            def sampler():
                while time.time() < deadline and sent[0] < streams and server.proc.poll() is None:
                    peak[0] = max(peak[0], server.rss_kb())
                    time.sleep(0.1)

            elapsed = sc.run_threads([lambda: mutator(0), lambda: mutator(1), legitimate, sampler])
            alive = server.proc.poll() is None
            time.sleep(2.5)  # idle reaper ends any stream left open
            after = server.rss_kb() if alive else -1
            serving = alive and server.health() == hpb.HealthCheckResponse.SERVING
        finally:
            rc = server.stop(expect_zero=False)
        total = sum(outcomes.values())
        print("| hostile streams | time (s) | streams/s | crashes | valid scans OK | RSS base / peak / after (MB) |")
        print("|---|---|---|---|---|---|")
        print("| %d | %.1f | %.0f | %d | %d / %d | %.1f / %.1f / %.1f |" % (
            total, elapsed, total / max(elapsed, 1e-9), 0 if alive else 1, valid["ok"], valid["ok"] + valid["failed"],
            baseline / 1024, peak[0] / 1024, after / 1024))
        print("\n| outcome | streams |\n|---|---|")
        for name, n in outcomes.most_common():
            print("| %s | %d |" % (name, n))
        if suspicious and not quiet:
            print("\nINTERNAL/UNKNOWN answers (first %d):" % len(suspicious))
            for s in suspicious:
                print("  " + s)
        return {"alive": alive and serving, "exit": rc, "valid": valid, "baseline": baseline, "after": after,
                "total": total, "suspicious": suspicious}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    result = run(args.streams, args.seconds, args.seed)
    ok = result["alive"] and result["exit"] == 0 and result["valid"]["failed"] == 0 and not result["suspicious"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
