"""recon5td computes the coil maps of a one-frame sense/cs scan while the scan streams in
(service/server/early_calib.c, recon/pipeline/calibration.h), and the images are bit for bit those
of a server that does not (early_calibration = 0):

- cs and sense on a 3D Poisson phantom with a noise scan (prewhitening) and geometric coil
  compression to 4 virtual coils, 2 workers (the job waits for the maps on the other worker):
  Completed has stage espirit-ahead, the log says the maps were used, the images equal the
  early_calibration = 0 server's (complex64 bits);
- a calibration line sent again with other data after the block was copied: the maps made ahead
  are not used (the log says why) and the images equal the other server's for the same stream;
- the client cancels while the maps are being computed: the calibration stops within 2 s
  (measured from the cancel to the log line), the next scan is served;
- a bad acquisition after the block: INVALID_ARGUMENT naming it, the calibration is dropped;
- ESPIRiT failing (kernel wider than the calibration region): the early calibration is only
  logged, the job fails with the same status and message as without early calibration;
- a cs job whose estimated peak exceeds the memory budget is refused at End
  (RESOURCE_EXHAUSTED naming the cs estimate and the budget), its early calibration skipped;
- every server ends with nothing reserved from its memory budget (its exit log line)."""
import os
import sys
import threading
import time

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

FAST = {"iters": 10, "calib": 16, "kernel": 4, "coils_virtual": 4}


def check(label, ok, detail=""):
    if not ok:
        raise AssertionError("%s: %s" % (label, detail))
    print("ok: %s%s" % (label, " (%s)" % detail if detail else ""))


def wait_log(server, text, seconds, start=0):
    """Seconds until `text` appears in the server log after offset start; None on timeout."""
    t0 = time.time()
    while time.time() - t0 < seconds:
        if text in server.log_text()[start:]:
            return time.time() - t0
        time.sleep(0.02)
    return None


def run(server, pb, xml, records, pipeline, params, timeout=300):
    events, code, details = server.reconstruct(sc.scan_messages(pb, xml, records, batch=16, pipeline=pipeline,
                                                                params=params, outputs=[pb.OUTPUT_COMPLEX]),
                                               timeout=timeout)
    done = [e.completed for e in events if e.WhichOneof("kind") == "completed"]
    stages = [t.stage for t in done[0].timings] if done else []
    return code, details, stages, sc.image_arrays(events, pb, kind=pb.OUTPUT_COMPLEX)


def same_bits(a, b):
    return len(a) == len(b) > 0 and all(np.array_equal(x.view(np.uint32), y.view(np.uint32)) for x, y in zip(a, b))


def changed_line(records):
    """The stream with a centre calibration line sent again at the end, its data times 1.5."""
    idx = records["head"]["idx"]
    k1, k2 = idx["kspace_encode_step_1"].astype(int), idx["kspace_encode_step_2"].astype(int)
    calib = (records["head"]["flags"].astype(np.uint64) & np.uint64((1 << 19) | (1 << 20))) != 0
    pick = np.nonzero(calib)[0]
    mid = pick[np.argmin(np.abs(k1[pick] - np.median(k1[pick])) + np.abs(k2[pick] - np.median(k2[pick])))]
    again = records[mid:mid + 1].copy()
    again["data"][0] = again["data"][0] * 1.5
    return np.concatenate([records, again])


def paired_cases(early, plain, pb, xml, records):
    for pipeline in ("cs", "sense"):
        start = len(early.log_text())
        code, details, stages, images = run(early, pb, xml, records, pipeline, FAST)
        check("%s with early calibration" % pipeline, code == grpc.StatusCode.OK, details)
        check("%s: Completed has stage espirit-ahead" % pipeline, "espirit-ahead" in stages and "espirit" not in stages,
              stages)
        log = early.log_text()[start:]
        check("%s: the log says the maps made ahead were used" % pipeline, "are used" in log)
        code0, details0, stages0, images0 = run(plain, pb, xml, records, pipeline, FAST)
        check("%s without early calibration" % pipeline, code0 == grpc.StatusCode.OK and "espirit" in stages0, details0)
        check("%s: images bit for bit equal" % pipeline, same_bits(images, images0),
              "%d and %d images, max |diff| %s" % (len(images), len(images0), [float(np.max(np.abs(x - y)))
                                                                             for x, y in zip(images, images0)]))
    altered = changed_line(records)
    start = len(early.log_text())
    code, details, stages, images = run(early, pb, xml, altered, "cs", FAST)
    log = early.log_text()[start:]
    check("a block line sent again: maps made ahead not used", code == grpc.StatusCode.OK and
          "espirit" in stages and "calibration block's samples changed" in log, "%s %s" % (details, stages))
    code0, _, _, images0 = run(plain, pb, xml, altered, "cs", FAST)
    check("a block line sent again: images equal the plain server's", code0 == grpc.StatusCode.OK and
          same_bits(images, images0))
    # ESPIRiT fails: same status and message either way
    bad = dict(FAST, calib=8, kernel=10)
    code, details, _, _ = run(early, pb, xml, records, "cs", bad)
    code0, details0, _, _ = run(plain, pb, xml, records, "cs", bad)
    check("ESPIRiT failing: the same error with and without early calibration",
          code != grpc.StatusCode.OK and code == code0 and details == details0, "%s: %s" % (code.name, details))


def held_stream(pb, xml, records, params, release, bad_after_block=False):
    """Header and batches until the release event (set by the test), then the rest or a bad
    acquisition (wrong channel count)."""
    msgs = sc.scan_messages(pb, xml, records, batch=16, pipeline="cs", params=params)
    sent = 0
    for m in msgs:
        if m.WhichOneof("kind") == "batch":
            sent += len(m.batch.acquisitions)
            if sent > len(records) - 16:  # the block is in (the phantom sends the centre earlier)
                release.wait(120)
                if bad_after_block:
                    acq = sc.acquisition(pb, records[0])
                    acq.active_channels = 3
                    b = pb.AcquisitionBatch()
                    b.acquisitions.extend([acq])
                    yield pb.ScanMessage(batch=b)
                    return
        yield m


def cancel_case(server, pb, xml, records):
    release = threading.Event()
    start = len(server.log_text())
    params = dict(FAST, calib=0, kernel=6, coils_virtual=0)  # slower maps: seconds to cancel in
    call = server.channel.stream_stream(sc.RECONSTRUCT, request_serializer=pb.ScanMessage.SerializeToString,
                                        response_deserializer=pb.ReconEvent.FromString)(
        held_stream(pb, xml, records, params, release), timeout=300)
    result = {}

    def drain():
        try:
            for _ in call:
                pass
            result["code"] = grpc.StatusCode.OK
        except grpc.RpcError as e:
            result["code"] = e.code()
    reader = threading.Thread(target=drain)
    reader.start()
    running = wait_log(server, "coil maps being computed", 40, start)
    check("cancel: the maps are being computed while the stream is held", running is not None)
    time.sleep(0.3)
    mark = len(server.log_text())
    t0 = time.time()
    call.cancel()
    release.set()
    stopped = wait_log(server, "early calibration stopped", 30, mark)
    reader.join(30)
    check("cancel: the client sees CANCELLED", result.get("code") == grpc.StatusCode.CANCELLED, result)
    check("cancel: the calibration stops within 2 s", stopped is not None and stopped < 2.0,
          "%.3f s" % (time.time() - t0 if stopped is None else stopped))
    code, details, _, _ = run(server, pb, xml, records, "cs", FAST)
    check("cancel: the next scan is served", code == grpc.StatusCode.OK, details)


def ingest_error_case(server, pb, xml, records):
    release = threading.Event()
    start = len(server.log_text())
    stream = held_stream(pb, xml, records, dict(FAST, calib=0, kernel=6, coils_virtual=0), release,
                         bad_after_block=True)
    threading.Thread(target=lambda: (wait_log(server, "coil maps being computed", 120, start), release.set())).start()
    events, code, details = server.reconstruct(stream, timeout=300)
    check("bad acquisition after the block: INVALID_ARGUMENT naming it",
          code == grpc.StatusCode.INVALID_ARGUMENT and "acquisition" in details and "channels" in details, details)
    ended = wait_log(server, "early calibration stopped", 30, start)
    check("bad acquisition after the block: the calibration stops", ended is not None)


def budget_case(work, pb, hpb, xml, records):
    server = sc.Server(work, pb, hpb, ["--workers", "1", "--memory-budget-mb", "32"])
    try:
        start = len(server.log_text())
        code, details, _, _ = run(server, pb, xml, records, "cs", FAST)
        log = server.log_text()[start:]
        check("cs over the budget: refused at End", code == grpc.StatusCode.RESOURCE_EXHAUSTED and
              "the cs reconstruction of this scan needs an estimated" in details and "memory budget of 32 MiB" in details,
              "%s: %s" % (code.name, details))
        check("cs over the budget: no early calibration ran", "coil maps being computed" not in log)
    finally:
        server.stop()
    return server


def main():
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, "vol.h5", matrix="48,64,48", kind="shepp-logan-3d",
                               extra=["--sampling", "poisson", "--accel", "3", "--noise", "0.002"])
        xml, records = sc.read_scan(scan)
        early = sc.Server(work, pb, hpb, ["--workers", "2", "--memory-budget-mb", "2048"])
        plain = sc.Server(work, pb, hpb, ["--workers", "1", "--early-calibration", "0", "--memory-budget-mb", "2048"])
        servers = [early, plain]
        try:
            paired_cases(early, plain, pb, xml, records)
            cancel_case(early, pb, xml, records)
            ingest_error_case(early, pb, xml, records)
        finally:
            for s in servers:
                s.stop()
        servers.append(budget_case(work, pb, hpb, xml, records))
        for s in servers:
            check("server on %s: nothing reserved at exit" % s.address,
                  "memory budget: nothing reserved after every call ended" in s.log_text())
    print("early calibration: all cases passed")


if __name__ == "__main__":
    main()
