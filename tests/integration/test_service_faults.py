"""Device faults through recon5td, without a device: the server runs on the fault-injecting CPU
back end "cpu-fault" (recon/cpu/backend_fault.h) with R5_FAULT_INJECT, one worker, and small
cartesian scans are sent one after the other.

- sticky (an illegal address on a GPU): exactly one job fails, with UNAVAILABLE naming the
  injected error; the worker retires its context and makes a new one; every later job succeeds
  and health stays SERVING.
- oom: the job fails with RESOURCE_EXHAUSTED saying out of device memory (R5_ENOMEM's gRPC
  status); no rebuild; the next job succeeds.
- transient: INTERNAL, no rebuild, the next job succeeds.
- lost (the device never comes back): the job fails UNAVAILABLE, the rebuild fails too, the
  worker leaves the pool, health turns NOT_SERVING and the next job is refused with UNAVAILABLE
  saying no worker is usable."""
import os
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

JOBS = 4


def start(work, pb, hpb, spec):
    os.environ["R5_FAULT_INJECT"] = spec
    try:
        return sc.Server(work, pb, hpb, ["--backend", "cpu-fault", "--workers", "1"])
    finally:
        del os.environ["R5_FAULT_INJECT"]


def send(server, pb, scan, n):
    xml, records = sc.read_scan(scan)
    events, code, details = server.reconstruct(sc.scan_messages(pb, xml, records, job_id="fault-%d" % n),
                                               timeout=60)
    if code == grpc.StatusCode.OK and "image" not in sc.event_kinds(events):
        raise AssertionError("job %d: OK without images" % n)
    return code, details


def fail(message, server):
    print("FAIL:", message)
    print(server.log_text()[-3000:])
    server.stop(expect_zero=False)
    sys.exit(1)


def one_failure(work, pb, hpb, scan, spec, want_code, want_words, retires):
    """Jobs one after another: exactly one fails with want_code and a message holding every word of
    want_words, all later ones succeed, health stays SERVING; the log shows a rebuild iff retires."""
    server = start(work, pb, hpb, spec)
    results = [send(server, pb, scan, n) for n in range(JOBS)]
    failed = [n for n, (code, _) in enumerate(results) if code != grpc.StatusCode.OK]
    if len(failed) != 1:
        fail("%s: %d failed jobs, expected 1: %s" % (spec, len(failed), results), server)
    code, details = results[failed[0]]
    if code != want_code or not all(w in details for w in want_words):
        fail("%s: job %d ended %s '%s', expected %s naming %s" % (spec, failed[0], code.name, details,
                                                                   want_code.name, want_words), server)
    if failed[0] == JOBS - 1:
        fail("%s: the fault came on the last job: no job after it was checked" % spec, server)
    if server.health() != server.hpb.HealthCheckResponse.SERVING:
        fail("%s: health is not SERVING after the fault" % spec, server)
    log = server.log_text()
    rebuilt = "making a new one" in log and log.count("worker 0 ready") == 2
    if rebuilt != retires:
        fail("%s: context %s, expected %s" % (spec, "rebuilt" if rebuilt else "kept",
                                             "a rebuild" if retires else "none"), server)
    server.stop()
    print("%s: job %d of %d failed with %s (%s); %s; later jobs OK" %
          (spec, failed[0] + 1, JOBS, code.name, details, "context rebuilt" if retires else "no rebuild"))


def device_lost(work, pb, hpb, scan):
    spec = "after=1,kind=lost,slot=fft_exec"
    server = start(work, pb, hpb, spec)
    code, details = send(server, pb, scan, 0)
    if code != grpc.StatusCode.UNAVAILABLE or "injected sticky device error" not in details:
        fail("%s: first job ended %s '%s', expected UNAVAILABLE naming the injected error" %
             (spec, code.name, details), server)
    end = time.time() + 10
    while time.time() < end and server.health() != server.hpb.HealthCheckResponse.NOT_SERVING:
        time.sleep(0.1)
    if server.health() != server.hpb.HealthCheckResponse.NOT_SERVING:
        fail("%s: health still SERVING with no usable worker" % spec, server)
    code2, details2 = send(server, pb, scan, 1)
    if code2 != grpc.StatusCode.UNAVAILABLE or "no usable worker" not in details2 or "lost" not in details2:
        fail("%s: job after the loss ended %s '%s', expected UNAVAILABLE: no usable worker (device lost)" %
             (spec, code2.name, details2), server)
    if "leaves the pool" not in server.log_text():
        fail("%s: no log line saying the worker left the pool" % spec, server)
    server.stop()
    print("%s: job failed %s (%s); health NOT_SERVING; next job %s (%s)" %
          (spec, code.name, details, code2.name, details2))


def main():
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, name="f.h5", matrix="64", coils=4)
        one_failure(work, pb, hpb, scan, "after=2,kind=sticky,slot=fft_exec", grpc.StatusCode.UNAVAILABLE,
                    ["injected sticky device error", "fft_exec"], True)
        one_failure(work, pb, hpb, scan, "after=1,kind=oom,slot=fft_plan_make",
                    grpc.StatusCode.RESOURCE_EXHAUSTED, ["stage ", "out of device memory"], False)
        one_failure(work, pb, hpb, scan, "after=2,kind=transient,slot=fft_exec", grpc.StatusCode.INTERNAL,
                    ["transient", "fft_exec"], False)
        device_lost(work, pb, hpb, scan)
    print("PASS")


if __name__ == "__main__":
    main()
