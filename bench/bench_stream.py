#!/usr/bin/python3
"""recon5td: time from the last acquisition to the images for a scan streamed like a scanner
sends it (acquisitions paced over --scan-s seconds), with the coil maps computed while the scan
streams in (early_calibration = 1) and without (0), on the same scan, server and parameters.

usage: R5_BIN=build /usr/bin/python3 bench/bench_stream.py SCAN.h5 [--scan-s 60] [--runs 1]
       [--order file|calib-first] [--pipeline cs] [--param key=value ...] [--workers 1]

The scan is an ISMRMRD file (e.g. `recon5t phantom --kind vessel-wall --sampling poisson
--accel 4`). Acquisitions go out in batches of --batch, each batch when its time has come
(noise scans first, at once, as a scanner sends its noise calibration before imaging);
order calib-first sends the calibration-flagged lines before the others (a centre-out
scanner order). Printed per run: the stream's seconds, last acquisition -> last image, the
server's stage timings (Completed), and whether both runs gave the same bits."""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import svc_common as sc  # noqa: E402

CALIB_FLAGS = (1 << 19) | (1 << 20)  # ISMRMRD_ACQ_IS_PARALLEL_CALIBRATION[_AND_IMAGING] (bits 20, 21)
NOISE_FLAG = 1 << 18                 # ISMRMRD_ACQ_IS_NOISE_MEASUREMENT (bit 19)


def ordered(records, order):
    flags = records["head"]["flags"].astype(np.uint64)
    noise = (flags & np.uint64(NOISE_FLAG)) != 0
    calib = (flags & np.uint64(CALIB_FLAGS)) != 0
    idx = np.arange(len(records))
    if order == "calib-first":
        idx = np.concatenate([idx[noise], idx[~noise & calib], idx[~noise & ~calib]])
    else:
        idx = np.concatenate([idx[noise], idx[~noise]])
    return records[idx], int(noise.sum())


def paced(pb, xml, records, n_noise, scan_s, batch, pipeline, params, t):
    """ScanMessages with the imaging batches spread evenly over scan_s seconds."""
    h = pb.ScanHeader(ismrmrd_xml=xml, pipeline=pipeline)
    for k, v in params.items():
        h.parameters.add(key=k, value=str(v))
    yield pb.ScanMessage(header=h)
    t["first"] = time.perf_counter()
    if n_noise:
        b = pb.AcquisitionBatch()
        b.acquisitions.extend(sc.acquisition(pb, r) for r in records[:n_noise])
        yield pb.ScanMessage(batch=b)
    imaging = records[n_noise:]
    per_s = len(imaging) / scan_s if scan_s > 0 else 0
    for start in range(0, len(imaging), batch):
        if per_s:
            due = t["first"] + (start + batch) / per_s
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        b = pb.AcquisitionBatch()
        b.acquisitions.extend(sc.acquisition(pb, r) for r in imaging[start:start + batch])
        yield pb.ScanMessage(batch=b)
    t["last"] = time.perf_counter()
    yield pb.ScanMessage(end=pb.End())


def one_run(server, pb, xml, records, n_noise, args, params):
    t = {}
    stream = server.channel.stream_stream(sc.RECONSTRUCT, request_serializer=pb.ScanMessage.SerializeToString,
                                          response_deserializer=pb.ReconEvent.FromString)
    events = []
    for e in stream(paced(pb, xml, records, n_noise, args.scan_s, args.batch, args.pipeline, params, t),
                    timeout=3600):
        events.append(e)
        if e.WhichOneof("kind") in ("image", "completed"):
            t["result"] = time.perf_counter()
    done = [e.completed for e in events if e.WhichOneof("kind") == "completed"]
    timings = " ".join("%s=%.2f" % (x.stage, x.seconds) for x in done[0].timings) if done else "(none)"
    return t["last"] - t["first"], t["result"] - t["last"], timings, sc.image_arrays(events, pb)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scan")
    ap.add_argument("--scan-s", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--order", default="file", choices=["file", "calib-first"])
    ap.add_argument("--pipeline", default="cs")
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--workers", default="1")
    ap.add_argument("--modes", default="0,1", help="early_calibration values to run, in order")
    args = ap.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    sc.require_binaries()
    xml, records = sc.read_scan(args.scan)
    records, n_noise = ordered(records, args.order)
    print("scan %s: %d acquisitions (%d noise), streamed over %.0f s in batches of %d, order %s, pipeline %s %s" %
          (os.path.basename(args.scan), len(records), n_noise, args.scan_s, args.batch, args.order, args.pipeline,
           " ".join(args.param)))
    print("%-6s %4s %9s %22s  %s" % ("early", "run", "stream s", "last acq -> images s", "server stages (s)"))
    images = {}
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        for mode in args.modes.split(","):
            server = sc.Server(work, pb, hpb, ["--workers", args.workers, "--early-calibration", mode,
                                               "--memory-budget-mb", "16384", "--max-message-mb", "256"])
            try:
                for run in range(args.runs):
                    stream_s, latency, timings, imgs = one_run(server, pb, xml, records, n_noise, args, params)
                    images.setdefault(mode, imgs)
                    print("%-6s %4d %9.1f %22.2f  %s" % (mode, run + 1, stream_s, latency, timings), flush=True)
            finally:
                server.stop()
    if len(images) == 2:
        a, b = images.values()
        same = len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
        print("images of both modes bit for bit equal: %s" % same)


if __name__ == "__main__":
    main()
