"""Many matrix sizes, one server: 40 jobs, each a different matrix (2D and 3D, cartesian and
SENSE), one worker. FFT plans and centring ramps are cached per shape in the worker's context;
the cache is bounded (R5_CTX_FFT_CACHE_ENTRIES shapes, least recently used out), so the
server's resident memory must plateau: sizes come in a scrambled order within a fixed range,
and after the first SETTLED jobs RSS may grow by at most GROWTH_MB over the other 20 (without
the bound every new shape stayed cached)."""
import os
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

GROWTH_MB = 4
N_JOBS = 40
SETTLED = 20  # the cache is full (16 shapes) by then


def main():
    sc.require_binaries()
    if sc.SANITIZE:
        sc.skip("RSS bounds are meaningless under a sanitizer's allocator")
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        server = sc.Server(work, pb, hpb, ["--workers", "1"])
        rss = []
        try:
            order = [(i * 17) % N_JOBS for i in range(N_JOBS)]  # sizes in a scrambled order
            for n, i in enumerate(order):
                if i % 2:
                    kind, matrix, pipeline = "shepp-logan-3d", "%d,%d,%d" % (28 + i // 2, 28 + i // 2, 20), ""
                else:
                    kind, matrix, pipeline = "shepp-logan", str(64 + i), "sense" if i % 4 == 0 else ""
                scan = sc.make_phantom(work, name="s.h5", kind=kind, matrix=matrix, coils=4)
                xml, records = sc.read_scan(scan)
                events, code, details = server.reconstruct(
                    sc.scan_messages(pb, xml, records, pipeline=pipeline, job_id="shape-%d" % i), timeout=120)
                if code != grpc.StatusCode.OK:
                    print("FAIL: job %d (%s %s): %s %s" % (n, kind, matrix, code.name, details))
                    sys.exit(1)
                time.sleep(0.1)
                rss.append(server.rss_kb() / 1024.0)
        finally:
            server.stop()
        base, last, peak = rss[SETTLED - 1], rss[-1], max(rss[SETTLED - 1:])
        print("RSS after job 1 %.1f MB, after job %d %.1f MB, after job %d %.1f MB (peak since: %.1f MB)" %
              (rss[0], SETTLED, base, N_JOBS, last, peak))
        if peak - base > GROWTH_MB:
            print("FAIL: RSS grew %.1f MB after job %d (bound %d MB)" % (peak - base, SETTLED, GROWTH_MB))
            sys.exit(1)
        print("PASS")


if __name__ == "__main__":
    main()
