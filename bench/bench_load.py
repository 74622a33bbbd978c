#!/usr/bin/python3
"""recon5td under load: N concurrent streaming clients, each streaming phantom scans one after
the other (paced like a scanner: one TR per acquisition, or as fast as possible).

usage: R5_BIN=build /usr/bin/python3 bench/bench_load.py [--clients 50] [--scans 2] [--matrix 64]
       [--coils 4] [--tr-ms 0] [--batch 8] [--workers 2] [--backend cpu]
       [--soak MINUTES [--sample-s 5]] [--server HOST:PORT --pid PID]

Prints throughput (scans/s, k-space MB/s over the wall time), latency p50/p99 (last acquisition
sent -> the call's status, which comes after the last image), errors by gRPC code and images
lost (a scan returning fewer images than the warm-up scan). --soak runs the clients in a loop
for MINUTES and samples the server's VmRSS (/proc/PID/status) every --sample-s seconds: the RSS
over time is printed, then baseline/peak/after. Without --server a recon5td is started on a free
loopback port (svc_common.Server) with --max-streams-per-peer above --clients."""
import argparse
import collections
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import svc_common as sc  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def paced(pb, xml, records, batch, tr_s, job_id, sent):
    """The scan's messages; sleeps one TR per acquisition before each batch (a scanner's pace)."""
    for m in sc.scan_messages(pb, xml, records, batch=batch, job_id=job_id, outputs=[pb.OUTPUT_COMPLEX]):
        if tr_s > 0 and m.WhichOneof("kind") == "batch":
            time.sleep(tr_s * len(m.batch.acquisitions))
        if m.WhichOneof("kind") == "end":
            sent[0] = time.perf_counter()  # the last acquisition went out with the batch before
        yield m


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency, self.errors = [], collections.Counter()
        self.scans = self.images = self.lost = 0
        self.mb = 0.0

    def add(self, lat, code, n_images, expected, mb):
        with self.lock:
            self.scans += 1
            if code == sc.grpc.StatusCode.OK:
                self.latency.append(lat)
                self.mb += mb
            else:
                self.errors[code.name] += 1
            self.images += n_images
            self.lost += max(0, expected - n_images)


def client(server, pb, xml, records, args, i, expected, mb, stats, stop_at):
    n = 0
    while True:
        if stop_at is None and n >= args.scans:
            return
        if stop_at is not None and time.time() >= stop_at:
            return
        sent = [None]
        events, code, _ = server.reconstruct(paced(pb, xml, records, args.batch, args.tr_ms / 1000.0,
                                                   "load-%02d-%d" % (i, n), sent), timeout=600)
        done = time.perf_counter()
        n_images = sum(1 for e in events if e.WhichOneof("kind") == "image")
        stats.add(done - sent[0] if sent[0] else None, code, n_images, expected, mb)
        n += 1


class External:
    """A running server (--server): the same reconstruct() as svc_common.Server."""
    def __init__(self, address, pb):
        self.pb = pb
        self.channel = sc.grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", sc.MAX_MESSAGE), ("grpc.max_send_message_length", sc.MAX_MESSAGE)])
        self.reconstruct = sc.Server.reconstruct.__get__(self)

    def stop(self):
        self.channel.close()


def pct(values, q):
    v = sorted(x for x in values if x is not None)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--scans", type=int, default=2, help="scans per client (ignored with --soak)")
    ap.add_argument("--matrix", default="64")
    ap.add_argument("--coils", type=int, default=4)
    ap.add_argument("--tr-ms", type=float, default=0.0, help="pace: ms per acquisition (0: as fast as possible)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--soak", type=float, default=0.0, metavar="MINUTES")
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--server", default="")
    ap.add_argument("--pid", type=int, default=0, help="the --server's recon5td process (for RSS)")
    args = ap.parse_args()
    if not args.server:
        sc.require_binaries()
    elif not os.access(sc.RECON5T, os.X_OK):
        sc.skip("%s not built (needed for the phantom)" % sc.RECON5T)
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, matrix=args.matrix, coils=args.coils)
        xml, records = sc.read_scan(scan)
        mb = sum(len(r["data"]) * 4 for r in records) / 1e6
        if args.server:
            server, pid = External(args.server, pb), args.pid
        else:
            server = sc.Server(work, pb, hpb, ["--backend", args.backend, "--workers", str(args.workers),
                                               "--max-queue", str(max(64, 2 * args.clients)),
                                               "--max-streams-per-peer", str(args.clients + 8),
                                               "--memory-budget-mb", "4096"])
            pid = server.proc.pid
        rss = (lambda: rss_kb(pid)) if pid else (lambda: -1)
        try:
            events, code, details = server.reconstruct(paced(pb, xml, records, args.batch, 0, "warm-up", [None]),
                                                       timeout=600)
            if code != sc.grpc.StatusCode.OK:
                sys.exit("warm-up scan failed: %s %s" % (code.name, details))
            expected = sum(1 for e in events if e.WhichOneof("kind") == "image")
            time.sleep(0.5)
            baseline = rss()
            stats = Stats()
            stop_at = time.time() + args.soak * 60 if args.soak > 0 else None
            threads = [threading.Thread(target=client, args=(server, pb, xml, records, args, i, expected, mb,
                                                             stats, stop_at)) for i in range(args.clients)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            samples, peak, next_sample = [], baseline, start
            while any(t.is_alive() for t in threads):
                now = time.perf_counter()
                r = rss()
                peak = max(peak, r)
                if args.soak > 0 and now >= next_sample:
                    with stats.lock:
                        samples.append((now - start, r, stats.scans))
                    next_sample += args.sample_s
                time.sleep(0.05)
            wall = time.perf_counter() - start
            settle = time.time() + 15
            after = rss()
            while pid and after - baseline > 5 * 1024 and time.time() < settle:
                time.sleep(0.25)
                after = rss()
        finally:
            server.stop()
    print("scan %sx%s, %d coils, %.2f MB k-space, %d images/scan; %d clients, tr %.1f ms, backend %s%s" %
          (args.matrix, args.matrix, args.coils, mb, expected, args.clients, args.tr_ms, args.backend,
           ", soak %.1f min" % args.soak if args.soak else ""))
    print("%-8s %6s %8s %7s %7s %7s %7s %6s %s" % ("clients", "scans", "scans/s", "MB/s", "p50_s", "p99_s",
                                                     "images", "lost", "errors"))
    errors = ",".join("%s:%d" % kv for kv in sorted(stats.errors.items())) or "-"
    print("%-8d %6d %8.2f %7.2f %7.3f %7.3f %7d %6d %s" %
          (args.clients, stats.scans, stats.scans / wall, stats.mb / wall, pct(stats.latency, 0.5),
           pct(stats.latency, 0.99), stats.images, stats.lost, errors))
    if samples:
        print("\n%8s %10s %8s" % ("t_s", "rss_MB", "scans"))
        for t, r, n in samples:
            print("%8.1f %10.1f %8d" % (t, r / 1024, n))
    if pid:
        print("\nRSS baseline %.1f MB, peak %.1f MB, after %.1f MB" % (baseline / 1024, peak / 1024, after / 1024))
    sys.exit(1 if stats.lost or stats.errors else 0)


if __name__ == "__main__":
    main()
