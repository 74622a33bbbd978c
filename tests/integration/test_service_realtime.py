"""Pipeline realtime through recon5td (service/server/realtime.c): frames while the scan streams in.

- A golden-angle radial scan (tests/integration/svc_radial.py: analytic k-space, 64^2, 4 coils,
  2x oversampled readout, 100 spokes), frame_spokes 13, frame_step 7: every frame arrives BEFORE
  End (the client holds End back until it has them all), in order, each exactly once, their
  count floor((100 - 13) / 7) + 1 = 13 (Completed.frames_sent the same, frames_dropped 0), and
  each frame (complex) equals the offline `recon5t recon --pipeline grid` of the same spokes
  with the same frame keys (BART .cfl k-space + --traj) bit for bit with the grid pipeline's
  NUFFT (oversampling=2 tolerance=1e-5), and within 3e-3 with realtime's faster default
  (1.25, 1e-3).
- The client vanishes mid-stream (after its first frame): the memory reserved (Capabilities
  memory_in_use_bytes, > 0 while it streams) and the stream count go back to 0 within seconds,
  and the server serves the next client in full.
- Mode iterative (CG-SENSE per frame, warm-started, maps from frame 0): every frame, each
  correlating > 0.9 with the gridded frame of the same spokes; the same for mode grid with
  coil_maps=1 (maps made once, log); normal=toeplitz within 5% of the default NUFFT pair's
  frames; maps_refresh=2 every frame (the refreshes in the log); max_pending 1 with the whole
  scan in one message: sent + dropped = the frames due, some dropped, the rest in order.
- Bad input, each with a clear status naming the parameter: frame_spokes 0, negative, larger
  than the scan (at End), realtime on a Cartesian scan, DICOM format, an unknown mode or normal,
  maps_refresh without coil maps, a cs key,
  an ESPIRiT calibration width the maps cannot use.
- The server ends with nothing reserved from its memory budget.
- A golden-angle stream without traj whose header says radial_golden_angle (trajectoryDescription)
  makes the frames of the same stream with traj in every acquisition.
- A live scan 5x longer than a small server budget (4 MiB) completes: the spokes no frame needs
  are released as the stream goes, the reservation stays within the budget; the offline grid
  pipeline, which needs every spoke at End, is refused the same scan.
- With a PACS configured (down: a closed port), no instance goes out while the frames stream,
  and after End the whole series (one instance per frame) is pushed: Completed says all spooled."""
import os
import re
import sys
import threading
import time

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402
import svc_radial as rad  # noqa: E402


def check(label, ok, detail=""):
    if not ok:
        raise AssertionError("%s: %s" % (label, detail))
    print("ok: %s%s" % (label, " (%s)" % detail if detail else ""))


def stream(server, messages, timeout=120):
    return server.channel.stream_stream(sc.RECONSTRUCT, request_serializer=server.pb.ScanMessage.SerializeToString,
                                        response_deserializer=server.pb.ReconEvent.FromString)(messages, timeout=timeout)


def frames_before_end(server, pb, scan, params, expected, outputs):
    """Streams the scan holding End back until `expected` frames came; returns (events, status,
    details, whether they all came before End)."""
    gate = threading.Event()
    state = {"before_end": False}

    def gated():
        for m in scan.messages(pb, params, batch=8, outputs=outputs):
            if m.WhichOneof("kind") == "end":
                state["before_end"] = gate.wait(60)
            yield m

    events = []
    per_kind = {}
    try:
        for e in stream(server, gated()):
            events.append(e)
            if e.WhichOneof("kind") == "image":
                per_kind[e.image.kind] = per_kind.get(e.image.kind, 0) + 1
                if min(per_kind.get(k, 0) for k in outputs) >= expected:
                    gate.set()
        return events, grpc.StatusCode.OK, "", state["before_end"]
    except grpc.RpcError as e:
        gate.set()
        return events, e.code(), e.details(), state["before_end"]


def offline_frames(workdir, scan, fs, step):
    """The offline grid pipeline's frames of the same spokes: complex [frames, y, x]."""
    ksp, traj, out = (os.path.join(workdir, name) for name in ("rt_ksp", "rt_traj", "rt_grid"))
    scan.write_cfl(ksp, traj)
    sc.run([sc.RECON5T, "recon", ksp + ".cfl", "--traj", traj + ".cfl", "--pipeline", "grid", "--backend", "cpu",
            "--param", "frame_spokes=%d" % fs, "--param", "frame_step=%d" % step, "--out", out + ".cfl", "--quiet"])
    img = rad.read_cfl(out)  # [x, y, 1, ..., frames in dim 10]
    img = img.reshape(img.shape[0], img.shape[1], -1, order="F")
    return [img[:, :, f].T for f in range(img.shape[2])]


def case_frames(server, pb, workdir):
    scan = rad.Scan(n=64, coils=4, n_spokes=100)
    fs, step = 13, 7
    expected = (100 - fs) // step + 1
    outputs = [pb.OUTPUT_MAGNITUDE, pb.OUTPUT_COMPLEX]
    # the grid pipeline's NUFFT (oversampling 2, tolerance 1e-5): the same bits
    exact = {"frame_spokes": fs, "frame_step": step, "oversampling": 2, "tolerance": 1e-5}
    events, code, details, before_end = frames_before_end(server, pb, scan, exact, expected, outputs)
    check("realtime stream OK", code == grpc.StatusCode.OK, "%s %s" % (code, details))
    check("all %d frames before End" % expected, before_end)
    kinds = sc.event_kinds(events)
    check("Accepted first, Completed last", kinds[0] == "accepted" and kinds[-1] == "completed", kinds[:3])
    for kind in outputs:
        idx = [e.image.image_index for e in events if e.WhichOneof("kind") == "image" and e.image.kind == kind]
        rep = [e.image.repetition for e in events if e.WhichOneof("kind") == "image" and e.image.kind == kind]
        check("kind %d: frames in order, each once" % kind, idx == list(range(1, expected + 1)), idx)
        check("kind %d: repetition = frame" % kind, rep == list(range(expected)), rep)
    done = events[-1].completed
    check("Completed.frames_sent = %d, none dropped" % expected,
          done.frames_sent == expected and done.frames_dropped == 0, "%d %d" % (done.frames_sent, done.frames_dropped))
    check("Completed.n_images", done.n_images == 2 * expected, done.n_images)
    check("latency figures", 0 < done.frame_latency_p50 <= done.frame_latency_p99,
          "%.4f %.4f" % (done.frame_latency_p50, done.frame_latency_p99))
    frames = sc.image_arrays(events, pb, kind=pb.OUTPUT_COMPLEX)
    magnitude = sc.image_arrays(events, pb, kind=pb.OUTPUT_MAGNITUDE)
    check("magnitude = |complex|", all(np.allclose(m[0], np.abs(c[0]), rtol=1e-6, atol=0)
                                       for m, c in zip(magnitude, frames)))
    reference = offline_frames(workdir, scan, fs, step)
    check("offline grid makes %d frames too" % expected, len(reference) == expected, len(reference))
    worst = max(np.linalg.norm(f[0] - r) / np.linalg.norm(r) for f, r in zip(frames, reference))
    bits = all(np.array_equal(f[0], r) for f, r in zip(frames, reference))
    check("every frame = offline r5_grid_frame of its spokes", bits and worst == 0,
          "max relative difference %.2e, bit-identical %s" % (worst, bits))
    # realtime's own default NUFFT (oversampling 1.25, tolerance 1e-3): the same frames to ~1e-3
    events, code, details, before_end = frames_before_end(server, pb, scan, {"frame_spokes": fs, "frame_step": step},
                                                          expected, [pb.OUTPUT_COMPLEX])
    fast = sc.image_arrays(events, pb, kind=pb.OUTPUT_COMPLEX)
    check("default NUFFT: %d frames before End" % expected, code == grpc.StatusCode.OK and before_end and
          len(fast) == expected, "%s %s" % (code, details))
    worst = max(np.linalg.norm(f[0] - r) / np.linalg.norm(r) for f, r in zip(fast, reference))
    check("default NUFFT (1.25, 1e-3): frames within 3e-3 of the grid pipeline's", worst <= 3e-3,
          "max relative difference %.2e" % worst)
    # the frames differ (the pulsing blobs, the golden-angle spokes): not one image repeated
    check("frames differ", np.linalg.norm(frames[0][0] - frames[-1][0]) > 1e-3 * np.linalg.norm(frames[0][0]))


def case_iterative_and_drops(server, pb):
    """Mode iterative (warm-started CG-SENSE per frame, maps from frame 0): every frame, close to
    the gridded one (both see the same blobs); max_pending 1 with the whole scan in one batch:
    frames sent + dropped = frames due, some dropped, the rest in order."""
    scan = rad.Scan(n=64, coils=4, n_spokes=100)
    fs, step = 20, 20
    expected = (100 - fs) // step + 1
    events, code, details = server.reconstruct(scan.messages(pb, {"frame_spokes": fs, "frame_step": step}, batch=10),
                                               timeout=120)
    gridded = sc.image_arrays(events, pb)
    events, code, details = server.reconstruct(
        scan.messages(pb, {"frame_spokes": fs, "frame_step": step, "mode": "iterative", "iters": 4}, batch=10),
        timeout=120)
    frames = sc.image_arrays(events, pb)
    check("iterative: every frame", code == grpc.StatusCode.OK and len(frames) == expected == len(gridded),
          "%s %s %d" % (code, details, len(frames)))
    corr = min(np.corrcoef(f[0].ravel(), g[0].ravel())[0, 1] for f, g in zip(frames, gridded))
    check("iterative: frames correlate with the gridded ones", corr > 0.9, "min Pearson %.3f" % corr)
    check("iterative: finite", all(np.isfinite(f).all() for f in frames))
    events, code, details = server.reconstruct(
        scan.messages(pb, {"frame_spokes": fs, "frame_step": step, "coil_maps": 1}, batch=10), timeout=120)
    combined = sc.image_arrays(events, pb)
    check("grid + coil_maps: every frame", code == grpc.StatusCode.OK and len(combined) == expected,
          "%s %s %d" % (code, details, len(combined)))
    corr = min(np.corrcoef(f[0].ravel(), g[0].ravel())[0, 1] for f, g in zip(combined, gridded))
    check("grid + coil_maps: frames correlate with the rss ones", corr > 0.9 and
          all(np.isfinite(f).all() for f in combined), "min Pearson %.3f" % corr)
    check("maps made once per stream (iterative, coil_maps)", server.log_text().count("real-time coil maps") == 2,
          server.log_text().count("real-time coil maps"))
    events, code, details = server.reconstruct(
        scan.messages(pb, {"frame_spokes": 5, "frame_step": 5, "max_pending": 1, "mode": "iterative", "iters": 4},
                      batch=100), timeout=120)
    done = events[-1].completed if events and events[-1].WhichOneof("kind") == "completed" else None
    idx = [e.image.image_index for e in events if e.WhichOneof("kind") == "image"]
    check("max_pending 1: OK", code == grpc.StatusCode.OK and done is not None, "%s %s" % (code, details))
    check("max_pending 1: sent + dropped = 20 frames, some dropped",
          done.frames_sent + done.frames_dropped == 20 and done.frames_dropped > 0 and done.frames_sent == len(idx),
          "sent %d dropped %d" % (done.frames_sent, done.frames_dropped))
    check("max_pending 1: the frames sent in order", idx == sorted(idx) and len(set(idx)) == len(idx), idx)
    # the kept solver's two normals (nc_sense.h: the NUFFT pair by default, the Toeplitz kernel)
    events, code, details = server.reconstruct(
        scan.messages(pb, {"frame_spokes": fs, "frame_step": step, "mode": "iterative", "iters": 4,
                           "normal": "toeplitz"}, batch=10), timeout=120)
    toeplitz = sc.image_arrays(events, pb)
    check("iterative, normal toeplitz: every frame", code == grpc.StatusCode.OK and len(toeplitz) == expected,
          "%s %s %d" % (code, details, len(toeplitz)))
    rel = max(np.linalg.norm(t[0] - f[0]) / np.linalg.norm(t[0]) for t, f in zip(toeplitz, frames))
    check("iterative: the NUFFT pair's frames within 5% of the Toeplitz's", rel < 0.05, "worst relative %.4f" % rel)
    # maps_refresh 2: the maps made again from a later window (when no frame waits), said in the log
    before = server.log_text().count("coil maps refreshed")
    events, code, details = server.reconstruct(
        scan.messages(pb, {"frame_spokes": fs, "frame_step": step, "mode": "iterative", "iters": 4,
                           "maps_refresh": 2}, batch=10), timeout=120)
    refreshed = sc.image_arrays(events, pb)
    check("iterative, maps_refresh 2: every frame", code == grpc.StatusCode.OK and len(refreshed) == expected,
          "%s %s %d" % (code, details, len(refreshed)))
    corr = min(np.corrcoef(r[0].ravel(), g[0].ravel())[0, 1] for r, g in zip(refreshed, gridded))
    check("iterative, maps_refresh 2: frames correlate with the gridded ones", corr > 0.9, "min Pearson %.3f" % corr)
    # a refresh waits for an empty queue (realtime.c), so how many ran depends on the load: frames 2
    # and 4 of 5 are the only candidates
    log = server.log_text()
    counts = re.findall(r"coil maps refreshed (\d+) times", log)
    check("iterative, maps_refresh 2: the refreshes in the log (at most frames 2 and 4)",
          len(counts) == before + 1 and 0 <= int(counts[-1]) <= 2 and "refreshed every maps_refresh frames" in log,
          counts[-1:])


def wait_idle(server, seconds):
    """Seconds until nothing is reserved and no stream is open; None on timeout."""
    t0 = time.time()
    while time.time() - t0 < seconds:
        caps = server.capabilities()
        if caps.memory_in_use_bytes == 0 and caps.active_streams == 0:
            return time.time() - t0
        time.sleep(0.05)
    return None


def case_vanish(server, pb):
    scan = rad.Scan(n=64, coils=4, n_spokes=400)
    release = threading.Event()

    def held():  # sends 64 spokes, then nothing until released (the client is "gone")
        for m in scan.messages(pb, {"frame_spokes": 16, "frame_step": 16}, batch=8, stop_after=64, end=False):
            yield m
        release.wait(60)

    call = stream(server, held())
    frames = 0
    for e in call:
        if e.WhichOneof("kind") == "image":
            frames += 1
            break
    check("vanish: a frame came before the client went", frames == 1)
    during = server.capabilities()
    check("vanish: memory reserved while streaming", during.memory_in_use_bytes > 0 and during.active_streams == 1,
          "%d bytes, %d streams" % (during.memory_in_use_bytes, during.active_streams))
    t_cancel = time.time()
    call.cancel()
    idle = wait_idle(server, 10)
    release.set()
    check("vanish: memory and streams back to 0", idle is not None,
          "after %.2f s" % (idle if idle is not None else time.time() - t_cancel))
    check("vanish: the log says the real-time job stopped", "real time stopped" in server.log_text())
    small = rad.Scan(n=64, coils=4, n_spokes=40)
    events, code, details = server.reconstruct(small.messages(pb, {"frame_spokes": 20, "frame_step": 10}),
                                               timeout=120)
    images = [e for e in events if e.WhichOneof("kind") == "image"]
    check("vanish: the next client is served", code == grpc.StatusCode.OK and len(images) == 3,
          "%s %s, %d frames" % (code, details, len(images)))


def expect_refusal(server, pb, messages, code, words, label):
    events, got, details = server.reconstruct(messages, timeout=60)
    check(label, got == code and all(w in details for w in words), "%s: %s" % (got, details))
    check(label + ": no image", not any(e.WhichOneof("kind") == "image" for e in events))


def case_bad_input(server, pb, workdir):
    scan = rad.Scan(n=64, coils=4, n_spokes=60)
    bad = grpc.StatusCode.INVALID_ARGUMENT
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": 0}), bad, ["frame_spokes"], "frame_spokes 0")
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": -3}), bad, ["frame_spokes", "-3"],
                   "frame_spokes negative")
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": 61}), bad,
                   ["frame_spokes = 61", "60 spokes", "End"], "frame_spokes larger than the scan")
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": 20, "mode": "fast"}), bad, ["mode", "fast"],
                   "unknown mode")
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": 20, "mode": "iterative", "calib": 4}), bad,
                   ["calib = 4", "at least 8"], "iterative: calibration too small")
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": 20, "mode": "iterative", "normal": "fast"}), bad,
                   ["normal", "fast"], "iterative: unknown normal")
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": 20, "maps_refresh": 2}), bad,
                   ["maps_refresh = 2", "coil_maps"], "maps_refresh without maps")
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": 20}, fmt=pb.FORMAT_DICOM), bad,
                   ["FORMAT_FLOAT32"], "DICOM frames")
    expect_refusal(server, pb, scan.messages(pb, {"frame_spokes": 20, "lambda_l1": 0.1}), bad,
                   ["lambda_l1", "realtime"], "a cs key on realtime")
    cart = sc.make_phantom(workdir, "cart.h5", matrix="32", coils=2)
    xml, records = sc.read_scan(cart)
    expect_refusal(server, pb, sc.scan_messages(pb, xml, records, pipeline="realtime",
                                                params={"frame_spokes": 4}), bad, ["non-Cartesian"],
                   "realtime on a Cartesian scan")
    check("bad input: nothing left reserved", wait_idle(server, 10) is not None)


def spooled_dcm(spool):
    return [f for _, _, files in os.walk(spool) for f in files if f.endswith(".dcm")]


def case_pacs(workdir, pb, hpb):
    """A server with a PACS that is down (a closed port): no instance while the frames stream, the
    whole series (one instance per frame) pushed after End, so Completed says all spooled."""
    spool = os.path.join(workdir, "spool")
    server = sc.Server(workdir, pb, hpb, ["--pacs-host", "127.0.0.1", "--pacs-port", str(sc.free_port()),
                                          "--pacs-called-ae", "R5PACS", "--spool-dir", spool, "--pacs-retry-s", "60"])
    try:
        if pb.FORMAT_DICOM not in server.capabilities().formats:
            print("SKIP part: recon5td built without DICOM (no PACS push)")
            return
        scan = rad.Scan(n=64, coils=4, n_spokes=60)
        gate, seen = threading.Event(), {}

        def gated():
            for m in scan.messages(pb, {"frame_spokes": 10, "frame_step": 10}, batch=10):
                if m.WhichOneof("kind") == "end":
                    gate.wait(60)
                    seen["spooled before End"] = len(spooled_dcm(spool))
                yield m

        events = []
        for e in stream(server, gated()):
            events.append(e)
            if sum(1 for x in events if x.WhichOneof("kind") == "image") == 6:
                gate.set()
        done = events[-1].completed
        check("pacs: no instance pushed per frame", seen.get("spooled before End") == 0, seen)
        check("pacs: the series of 6 frames after End (PACS down: all spooled)",
              done.frames_sent == 6 and done.pacs_spooled == 6 and done.pacs_failed == 0 and done.pacs_stored == 0,
              "sent %d stored %d spooled %d failed %d: %s" % (done.frames_sent, done.pacs_stored, done.pacs_spooled,
                                                                done.pacs_failed, done.pacs_message))
        check("pacs: 6 instances in the spool", len(spooled_dcm(spool)) == 6, len(spooled_dcm(spool)))
        check("pacs: nothing left reserved", wait_idle(server, 10) is not None)
    finally:
        server.stop()


class HeaderTrajScan(rad.Scan):
    """Golden-angle spokes in traj.h's (BART's) convention, direction (sin a, cos a), with the
    analytic samples of those coordinates; with_traj False sends no traj (trajectory_dimensions 0)
    and a header whose trajectoryDescription says radial_golden_angle (recon/io/scan.h)."""

    def __init__(self, with_traj, **kw):
        super().__init__(**kw)
        radius = (np.arange(self.n_read) - self.n_read // 2) * (self.n / self.n_read)
        angle = np.fmod(np.arange(self.n_spokes) * rad.GOLDEN, 2 * np.pi)
        k = np.empty((self.n_spokes, self.n_read, 2), np.float64)
        k[..., 0] = radius[None, :] * np.sin(angle)[:, None]
        k[..., 1] = radius[None, :] * np.cos(angle)[:, None]
        self.traj = k.astype(np.float32)
        self.samples = rad.kspace(self.n, self.coils, self.traj, np.arange(self.n_spokes))
        self.with_traj = with_traj
        if not with_traj:
            self.xml = self.xml.replace("<trajectory>radial</trajectory>", "<trajectory>radial</trajectory>"
                                        "<trajectoryDescription><identifier>radial_golden_angle</identifier>"
                                        "</trajectoryDescription>")

    def acquisition(self, pb, spoke):
        acq = super().acquisition(pb, spoke)
        if not self.with_traj:
            acq.trajectory_dimensions = 0
            acq.trajectory = b""
        return acq


def case_header_trajectory(server, pb):
    """The same golden-angle stream with traj in every acquisition, and without any but with the
    header's trajectoryDescription: the same frames (the builder computes traj.h's coordinates)."""
    fs = step = 16
    frames = {}
    for with_traj in (True, False):
        scan = HeaderTrajScan(with_traj, n=64, coils=4, n_spokes=64)
        events, code, details = server.reconstruct(
            scan.messages(pb, {"frame_spokes": fs, "frame_step": step}, outputs=[pb.OUTPUT_COMPLEX]), timeout=120)
        check("header trajectory (traj sent: %s): OK" % with_traj, code == grpc.StatusCode.OK, "%s %s" % (code, details))
        frames[with_traj] = sc.image_arrays(events, pb, kind=pb.OUTPUT_COMPLEX)
    check("header trajectory: 4 frames each", len(frames[True]) == len(frames[False]) == 4,
          "%d %d" % (len(frames[True]), len(frames[False])))
    worst = max(np.linalg.norm(a[0] - b[0]) / np.linalg.norm(a[0]) for a, b in zip(frames[True], frames[False]))
    check("header trajectory: the frames of the carried trajectory", worst <= 1e-5, "max relative difference %.2e"
          % worst)


def case_long_stream(workdir, pb, hpb):
    """A live scan 5x longer than the server's memory budget (4 MiB; 4000 spokes of 128 samples
    x 4 coils = 20 MiB of samples and coordinates): the builder releases the spokes no frame needs
    (r5_scan_builder_release_spokes), so the stream completes with every frame accounted for and
    nothing left reserved; the same scan for the offline grid pipeline (which needs every spoke at
    End) is refused by the budget."""
    server = sc.Server(workdir, pb, hpb, ["--memory-budget-mb", "4"])
    try:
        scan = rad.Scan(n=64, coils=4, n_spokes=4000)
        held = scan.n_spokes * scan.n_read * (scan.coils * 8 + 3 * 4)
        check("long stream: the whole scan exceeds the budget", held > 4 * 4 * 2 ** 20, "%.1f MiB" % (held / 2 ** 20))
        fs = step = 20
        expected = (scan.n_spokes - fs) // step + 1
        peak = {"bytes": 0}
        stop = threading.Event()

        def watch():  # the reservation while the stream runs
            while not stop.is_set():
                peak["bytes"] = max(peak["bytes"], server.capabilities().memory_in_use_bytes)
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            events, code, details = server.reconstruct(
                scan.messages(pb, {"frame_spokes": fs, "frame_step": step}, batch=8), timeout=300)
        finally:
            stop.set()
            watcher.join()
        done = events[-1].completed if events and events[-1].WhichOneof("kind") == "completed" else None
        check("long stream: OK", code == grpc.StatusCode.OK and done is not None, "%s %s" % (code, details))
        frames = [e for e in events if e.WhichOneof("kind") == "image"]
        check("long stream: every frame sent or counted dropped",
              done.frames_sent + done.frames_dropped == expected and done.frames_sent == len(frames) > 0,
              "sent %d dropped %d of %d" % (done.frames_sent, done.frames_dropped, expected))
        check("long stream: the reservation stayed within the budget", 0 < peak["bytes"] <= 4 * 2 ** 20,
              "peak %.2f MiB" % (peak["bytes"] / 2 ** 20))
        check("long stream: nothing left reserved", wait_idle(server, 10) is not None)
        events, code, details = server.reconstruct(scan.messages(pb, {}, batch=8, pipeline="grid"), timeout=300)
        check("long stream offline (grid): refused by the budget", code != grpc.StatusCode.OK and
              "memory budget" in details, "%s %s" % (code, details))
    finally:
        server.stop()


def main():
    sc.require_binaries()
    with sc.tempdir() as workdir:
        pb, hpb = sc.load_protos(workdir)
        server = sc.Server(workdir, pb, hpb)
        try:
            check("capabilities list realtime", "realtime" in server.capabilities().pipelines)
            case_frames(server, pb, workdir)
            case_iterative_and_drops(server, pb)
            case_vanish(server, pb)
            case_bad_input(server, pb, workdir)
            case_header_trajectory(server, pb)
        finally:
            server.stop()
        check("nothing reserved at exit", "memory budget: nothing reserved after every call ended" in server.log_text())
        case_pacs(workdir, pb, hpb)
        case_long_stream(workdir, pb, hpb)


if __name__ == "__main__":
    main()
