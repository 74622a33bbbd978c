"""Concurrent scanners: several clients stream valid scans with readout oversampling (the
phantom default: the readout is inverse-FFT'd, cropped and FFT'd back per line while the scan
streams) into a recon5td with two completion-queue threads and several ingest threads, for tens
of seconds, in matrix sizes that change from stream to stream so that FFT plans keep being made
on several threads at once. Before FFTW planning was put behind one lock this killed the
server within 1-19 s (double free, SIGFPE, SIGSEGV in fftwf_plan_guru64_dft); now every stream
must end OK with images bit-identical to the offline reconstruction and the server must still
be serving.

R5_CONCURRENCY_S sets the duration (default 20 s; 12 s under the sanitizer build)."""
import os
import sys
import threading
import time

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

SHAPES = [("64", 4), ("80", 8), ("72", 12), ("96", 6)]


def main():
    sc.require_binaries()
    duration = float(os.environ.get("R5_CONCURRENCY_S", "12" if sc.SANITIZE else "20"))
    clients = 4 if sc.SANITIZE else 6
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scans = []
        for i, (matrix, coils) in enumerate(SHAPES):
            path = sc.make_phantom(work, name="s%d.h5" % i, matrix=matrix, coils=coils,
                                   extra=["--oversampling", "2"])
            xml, records = sc.read_scan(path)
            base = os.path.join(work, "ref%d" % i)
            sc.run([sc.RECON5T, "recon", path, "--out", base + ".cfl", "--backend", "cpu"])
            scans.append((xml, records, np.fromfile(base + ".cfl", dtype="<c8")))
        server = sc.Server(work, pb, hpb, ["--cq-threads", "2", "--ingest-threads", "3", "--workers", "2",
                                           "--max-queue", "64", "--memory-budget-mb", "2048"])
        done, failures = [0] * clients, []
        lock = threading.Lock()
        stop_at = time.time() + duration

        def client(i):
            n = 0
            while time.time() < stop_at and not failures:
                xml, records, reference = scans[(i + n) % len(scans)]
                msgs = sc.scan_messages(pb, xml, records, batch=4, job_id="c%d-%d" % (i, n),
                                        outputs=[pb.OUTPUT_COMPLEX])
                events, code, details = server.reconstruct(msgs, timeout=120)
                n += 1
                volumes = sc.image_arrays(events, pb, pb.OUTPUT_COMPLEX)
                got = np.concatenate([v.reshape(-1) for v in volumes]) if volumes else np.zeros(0, np.complex64)
                problem = None
                if code != grpc.StatusCode.OK:
                    problem = "client %d stream %d: %s %s" % (i, n, code.name, details)
                elif got.size != reference.size or not np.array_equal(got.view(np.uint32),
                                                                      reference.view(np.uint32)):
                    problem = "client %d stream %d: images differ from the offline recon" % (i, n)
                with lock:
                    if problem:
                        failures.append(problem)
                    else:
                        done[i] += 1

        try:
            elapsed = sc.run_threads([lambda i=i: client(i) for i in range(clients)])
            alive = server.proc.poll() is None
            print("%d clients, %.1f s: %d streams completed, %d failed; server %s" %
                  (clients, elapsed, sum(done), len(failures), "serving" if alive else
                   "DIED with %s" % server.proc.returncode))
            if not alive:
                failures.append("recon5td died (exit %s):\n%s" % (server.proc.returncode, server.log_text()[-3000:]))
            elif server.health() != hpb.HealthCheckResponse.SERVING:
                failures.append("recon5td not serving after the run")
            if sum(done) < clients:
                failures.append("only %d streams completed" % sum(done))
        finally:
            server.stop(expect_zero=not failures)
        if failures:
            print("FAIL:\n" + "\n".join(failures[:10]))
            sys.exit(1)
        print("PASS")


if __name__ == "__main__":
    main()
