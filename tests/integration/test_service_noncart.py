"""Non-Cartesian scans through recon5td: a golden-angle radial phantom (recon5t phantom --kind
dynamic, trajectory in every acquisition) streamed in comes back as images (pipeline auto = grid,
one image per frame with frame_spokes; Completed's quality is the mean over frames, or one image's against the
truth's time average without frame_spokes; FLOAT32 matching `recon5t recon` of the same file, and
DICOM that pydicom reads, also through `recon5t send --format dicom`); bad trajectories get INVALID_ARGUMENT naming the acquisition and the
problem (trajectory missing, coordinates outside the encoded matrix, trajectory_dimensions
changing, spokes of different lengths), a frame size larger than the scan too, and the server
serves the next scan after each."""
import io
import os
import re
import sys

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

FAILURES = []
SPOKES = 21
FRAMES = 3
# Completed's nrmse bounds (least-squares scaled, 64^2, 4 coils, pipeline auto); measured 2026-12:
# frames 0.211 (mean of 3), one image 0.098 (against the time average; refused at stage quality before)
QUALITY_NRMSE = {"frames": 0.3, "one image": 0.2}


def expect(name, result, code, pattern):
    events, got, details = result
    ok = got == code and re.search(pattern, details or "") is not None
    print("%-34s %-20s %s" % (name, got.name, details))
    if not ok:
        FAILURES.append("%s: expected %s /%s/, got %s %r" % (name, code.name, pattern, got.name, details))


def good(server, pb, xml, records, name, fmt=0):
    messages = list(sc.scan_messages(pb, xml, records, params={"frame_spokes": SPOKES}, job_id=name))
    messages[0].header.format = fmt
    events, code, details = server.reconstruct(iter(messages), timeout=120)
    images = [e.image for e in events if e.WhichOneof("kind") == "image"]
    if code != grpc.StatusCode.OK or len(images) != FRAMES:
        FAILURES.append("%s: got %s %r, %d images (want %d)" % (name, code.name, details, len(images), FRAMES))
    return events, images


def with_traj(records, change):
    """A copy of the records whose i-th traj array is change(i, traj) (None: no trajectory)."""
    out = []
    for i, r in enumerate(records):
        head = r["head"].copy()
        traj = np.asarray(r["traj"], dtype="<f4").copy()
        data = np.asarray(r["data"], dtype="<f4").copy()
        changed = change(i, head, traj, data)
        out.append({"head": head, "traj": changed[0], "data": changed[1]})
    return out


def main():
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, matrix="64", coils=4, kind="dynamic",
                               extra=["--frames", str(FRAMES), "--frame-spokes", str(SPOKES)])
        xml, records = sc.read_scan(scan)
        # the phantom's noise scans come first: spoke s is record first + s
        first = next(i for i, r in enumerate(records) if r["head"]["trajectory_dimensions"] > 0)
        cxml, crecords = sc.read_scan(sc.make_phantom(work, name="cart.h5", matrix="32", coils=2))
        offline = sc.offline_recon(work, scan, extra=["--frame-spokes", str(SPOKES)])
        reference = [a for _, a in sc.read_images(offline)]
        server = sc.Server(work, pb, hpb, ["--workers", "1", "--memory-budget-mb", "512"])
        try:
            events, images = good(server, pb, xml, records, "radial")
            arrays = sc.image_arrays(events, pb)
            ref = np.concatenate([sc.magnitude(a).astype(np.float32).ravel() for a in reference])
            got = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(1)
            if got.size != ref.size or not np.allclose(got, ref, rtol=1e-4, atol=1e-4 * float(ref.max())):
                FAILURES.append("radial: service images differ from recon5t recon's (%d vs %d values)"
                                % (got.size, ref.size))
            else:
                print("radial: %d frames %s, equal to recon5t recon's" % (len(arrays), arrays[0].shape))
            completed = [e.completed for e in events if e.WhichOneof("kind") == "completed"]
            if completed:
                print("timings:", " ".join("%s=%.3fs" % (t.stage, t.seconds) for t in completed[0].timings))
            _, dicoms = good(server, pb, xml, records, "radial-dicom", fmt=pb.FORMAT_DICOM)
            import pydicom
            for img in dicoms:
                ds = pydicom.dcmread(io.BytesIO(img.data))
                if (ds.Rows, ds.Columns) != (64, 64):
                    FAILURES.append("radial-dicom: %dx%d" % (ds.Rows, ds.Columns))
            print("radial-dicom: %d DICOM images, pydicom reads them" % len(dicoms))
            out = os.path.join(work, "sent")
            sc.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out, "--format", "dicom",
                    "--param", "frame_spokes=%d" % SPOKES])
            sent = sorted(f for f in os.listdir(out) if f.endswith(".dcm"))
            if len(sent) != FRAMES:
                FAILURES.append("recon5t send --format dicom: %d files (want %d)" % (len(sent), FRAMES))
            print("recon5t send --format dicom: %d files" % len(sent))
            # the phantom's truth has 3 frames: with frame_spokes the figures are the means over the
            # frames; without it (one image of all the spokes) the image is scored against the truth's
            # time average (quality.h) -- this failed at stage quality before
            for name, extra, images_want in (("frames", ["--param", "frame_spokes=%d" % SPOKES], FRAMES),
                                             ("one image", [], 1)):
                out = os.path.join(work, "sent-" + name.replace(" ", "-"))
                result = sc.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out] + extra)
                nrmse = re.search(r"quality nrmse\s+([0-9.eE+-]+)", result.stdout)
                images = re.search(r": (\d+) images, pipeline", result.stdout)
                value = float(nrmse.group(1)) if nrmse else float("nan")
                if not images or int(images.group(1)) != images_want or not value < QUALITY_NRMSE[name]:
                    FAILURES.append("recon5t send (%s): want %d images and nrmse < %g: %s"
                                    % (name, images_want, QUALITY_NRMSE[name], result.stdout.strip()))
                print("recon5t send (%s): %s images, nrmse %.4f against the ground truth"
                      % (name, images.group(1) if images else "?", value))

            cases = [
                ("trajectory missing", lambda i, h, t, d: (np.zeros(0, "<f4"), d) if i == first + 5 else (t, d),
                 lambda i, h: h.__setitem__("trajectory_dimensions", 0) if i == first + 5 else None,
                 r"acquisition .*trajectory missing"),
                ("coordinates out of range", lambda i, h, t, d: (t * 3 if i == first + 7 else t, d), None,
                 r"acquisition .*k[01] = .* outside \[-32, 32\]"),
                ("trajectory_dimensions changing",
                 lambda i, h, t, d: (np.concatenate([t.reshape(-1, 2), np.zeros((t.size // 2, 1), "<f4")],
                                                    axis=1).ravel() if i == first + 9 else t, d),
                 lambda i, h: h.__setitem__("trajectory_dimensions", 3) if i == first + 9 else None,
                 r"trajectory_dimensions 3, earlier spokes had 2"),
                ("spokes of different lengths",
                 lambda i, h, t, d: (t[: t.size // 2], d.reshape(4, -1)[:, : d.size // 8].ravel()) if i == first + 11 else (t, d),
                 lambda i, h: h.__setitem__("number_of_samples", h["number_of_samples"] // 2) if i == first + 11 else None,
                 r"spokes of different lengths"),
            ]
            for name, change, head_change, pattern in cases:
                def apply(i, h, t, d, change=change, head_change=head_change):
                    if head_change:
                        head_change(i, h)
                    return change(i, h, t, d)
                bad = with_traj(records, apply)
                expect(name, server.reconstruct(sc.scan_messages(pb, xml, bad, params={"frame_spokes": SPOKES}),
                                                timeout=60), grpc.StatusCode.INVALID_ARGUMENT, pattern)
                good(server, pb, xml, records, "after " + name)
            expect("frames larger than the scan",
                   server.reconstruct(sc.scan_messages(pb, xml, records, params={"frame_spokes": 1000}), timeout=60),
                   grpc.StatusCode.INVALID_ARGUMENT, r"frame_spokes=1000 is more than the scan's 63 spokes")
            expect("a pipeline that does not take it",
                   server.reconstruct(sc.scan_messages(pb, xml, records, pipeline="grappa"), timeout=60),
                   grpc.StatusCode.UNIMPLEMENTED, r"pipeline grappa does not take a non-Cartesian scan")
            expect("grid on a Cartesian scan",
                   server.reconstruct(sc.scan_messages(pb, cxml, crecords, pipeline="grid"), timeout=60),
                   grpc.StatusCode.INVALID_ARGUMENT, r"pipeline grid is for non-Cartesian scans")
            good(server, pb, xml, records, "last")
        finally:
            server.stop()
    if FAILURES:
        print("FAIL:\n  " + "\n  ".join(FAILURES))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
