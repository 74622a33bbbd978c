"""recon5td end to end on loopback: a Shepp-Logan phantom scan streamed in batches, once with the
real python grpcio client and once with `recon5t send`, gives the same images as the offline
`recon5t recon --backend cpu` (bit-identical complex64, magnitude within float rounding), with
Accepted, Progress..., Image..., Completed in order; Capabilities and health answer; SIGTERM
drains and the server exits 0. The phantom's ground truth travels in the ScanHeader and
Completed.quality reports nrmse < 0.05 (fully sampled); a ground truth of the wrong size or shape
is INVALID_ARGUMENT. `recon5t send --format dicom` writes files that pydicom reads and dciodvfy
passes without errors (that part SKIPs without dicom3tools)."""
import glob
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402


def read_cfl(base):
    with open(base + ".hdr") as f:
        lines = [l for l in f if not l.startswith("#")]
    dims = [int(v) for v in lines[0].split()]
    data = np.fromfile(base + ".cfl", dtype="<c8")
    assert data.size == int(np.prod(dims)), (dims, data.size)
    return data, dims


def compare(name, volumes, reference, dims):
    """volumes: list of [z, y, x] arrays (image order); reference: flat complex64, x fastest."""
    got = np.concatenate([v.reshape(-1) for v in volumes]) if volumes else np.zeros(0, np.complex64)
    if got.size != reference.size:
        raise AssertionError("%s: %d values, reference %d (dims %s)" % (name, got.size, reference.size, dims))
    if got.dtype == np.complex64:
        same = np.array_equal(got.view(np.uint32), reference.view(np.uint32))
        if not same:
            diff = np.max(np.abs(got - reference))
            raise AssertionError("%s: complex images differ from offline recon (max |diff| %g)" % (name, diff))
    else:
        ref = np.abs(reference).astype(np.float32)
        err = np.max(np.abs(got - ref)) / max(np.max(ref), 1e-30)
        if err > 1e-6:
            raise AssertionError("%s: magnitude differs from offline recon by %g (relative)" % (name, err))
    print("%s: %d values match the offline recon" % (name, got.size))


def ground_truth(scan):
    """The phantom file's ground_truth image (float32 magnitude, dims x fastest)."""
    found = [a for name, a in sc.read_images(scan) if "ground_truth" in name]
    assert found, "phantom has no ground_truth"
    arr = np.abs(np.asarray(found[0]))  # h5py order: slowest first
    dims = list(reversed(arr.shape))
    return arr.astype("<f4").tobytes(), dims


def with_truth(pb, messages, truth, dims=None):
    data, truth_dims = truth
    for m in messages:
        if m.WhichOneof("kind") == "header":
            m.header.ground_truth.data = data
            m.header.ground_truth.dims.extend(dims if dims is not None else truth_dims)
        yield m


def check_bad_truth(server, pb, xml, records, truth):
    data, dims = truth
    cases = [("size", (data[:-4], dims), "ground_truth.data has"),
             ("shape", (data, None), "does not match the reconstruction")]
    for label, (d, ds), needle in cases:
        shape = ds if ds is not None else [dims[0] * dims[1]] + [1] * (len(dims) - 1)
        msgs = with_truth(pb, sc.scan_messages(pb, xml, records, batch=32), (d, dims), shape)
        events, code, details = server.reconstruct(msgs, timeout=60)
        assert code.name == "INVALID_ARGUMENT" and needle in details, (label, code, details)
        assert not any(e.WhichOneof("kind") == "image" for e in events), label
        print("bad ground truth (%s): %s: %s" % (label, code.name, details))


def check_dicom_send(server, scan, out):
    sc.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out, "--format", "dicom",
            "--output", "magnitude", "--output", "phase", "--quiet"])
    files = sorted(glob.glob(os.path.join(out, "*.dcm")))
    assert len(files) == 2, files
    import pydicom
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and ds.Modality == "MR", f
        assert ds.pixel_array.shape == (int(ds.Rows), int(ds.Columns)), f
    print("recon5t send --format dicom: %d files, pydicom reads all (%dx%d)" % (len(files), ds.Rows, ds.Columns))
    if not shutil.which("dciodvfy"):
        print("SKIP part: dciodvfy (dicom3tools) not installed")
        return
    for f in files:
        r = subprocess.run(["dciodvfy", f], capture_output=True, text=True)
        errors = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]
        assert not errors, (f, errors)
    print("dciodvfy: no errors on %d files" % len(files))


def main():
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        matrix = "64" if sc.SANITIZE else "128"
        scan = sc.make_phantom(work, matrix=matrix, coils=8)
        ref_base = os.path.join(work, "ref")
        sc.run([sc.RECON5T, "recon", scan, "--out", ref_base + ".cfl", "--backend", "cpu"])
        reference, dims = read_cfl(ref_base)

        server = sc.Server(work, pb, hpb, ["--workers", "1"])
        try:
            caps = server.capabilities()
            assert caps.version and "cartesian" in caps.pipelines and "cpu" in caps.backends, caps
            assert caps.limits.max_message_bytes == 64 * 1024 * 1024, caps.limits
            assert not caps.pacs_destinations and caps.pacs_spooled == 0, caps
            # --backend cpu: GPUs (if any) are listed as not used; with CUDA workers each entry
            # carries its worker context's line (device name, memory)
            assert all(g.description and g.workers == 0 for g in caps.gpus), caps.gpus
            print("capabilities: version %s, backends %s, pipelines %s, workers %d" %
                  (caps.version, list(caps.backends), list(caps.pipelines), caps.workers))

            # 1. python grpcio client, with the phantom's ground truth
            xml, records = sc.read_scan(scan)
            truth = ground_truth(scan)
            msgs = with_truth(pb, sc.scan_messages(pb, xml, records, batch=16, job_id="e2e-python",
                                                   outputs=[pb.OUTPUT_MAGNITUDE, pb.OUTPUT_COMPLEX]), truth)
            events, code, details = server.reconstruct(msgs, timeout=120)
            assert code.name == "OK", (code, details, server.log_text())
            kinds = sc.event_kinds(events)
            problem = sc.check_order(kinds)
            assert problem is None, (problem, kinds)
            assert events[0].accepted.job_id and events[0].accepted.client_job_id == "e2e-python"
            done = events[-1].completed
            n_complex = len(sc.image_arrays(events, pb, pb.OUTPUT_COMPLEX))
            assert done.n_images == 2 * n_complex and n_complex > 0, (done.n_images, n_complex)
            assert len(done.timings) > 0, done
            quality = dict(done.quality)
            assert set(quality) >= {"nrmse", "psnr", "ssim"}, quality
            assert quality["nrmse"] < 0.05 and quality["ssim"] > 0.95 and quality["psnr"] > 30, quality
            assert not done.pacs_message and done.pacs_stored == 0, done  # no PACS configured
            print("grpcio quality vs ground truth: nrmse %.5f psnr %.2f dB ssim %.4f" %
                  (quality["nrmse"], quality["psnr"], quality["ssim"]))
            check_bad_truth(server, pb, xml, records, truth)
            compare("grpcio complex", sc.image_arrays(events, pb, pb.OUTPUT_COMPLEX), reference, dims)
            compare("grpcio magnitude", sc.image_arrays(events, pb, pb.OUTPUT_MAGNITUDE), reference, dims)
            img = [e.image for e in events if e.WhichOneof("kind") == "image"][0]
            assert list(img.matrix_size)[:2] == dims[:2] and len(img.read_dir) == 3, img.matrix_size
            print("grpcio: %d events (%s), stages %s" % (len(events), " ".join(sorted(set(kinds))),
                                                         [(t.stage, round(t.seconds, 4)) for t in done.timings]))

            # 2. recon5t send (complex out: .f32 files hold complex64)
            out = os.path.join(work, "sent")
            result = sc.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out,
                             "--batch", "8", "--output", "complex", "--job-id", "e2e-send"])
            files = sorted(glob.glob(os.path.join(out, "complex_*.f32")))
            assert files, os.listdir(out)
            volumes = [np.fromfile(f, dtype="<c8") for f in files]
            compare("recon5t send", volumes, reference, dims)
            assert os.path.exists(os.path.join(out, "completed.txt"))
            print(result.stdout.strip())
            nrmse = [float(l.split()[-1]) for l in result.stdout.splitlines() if "quality nrmse" in l]
            assert len(nrmse) == 1 and nrmse[0] < 0.05, result.stdout
            notruth = sc.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out + "-nt",
                              "--no-truth"])
            assert "quality" not in notruth.stdout, notruth.stdout

            # 2b. DICOM through recon5t send
            check_dicom_send(server, scan, os.path.join(work, "dicom"))

            # 3. a failing send exits non-zero with the server's message
            bad = sc.subprocess.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out,
                                     "--param", "no_such_key=1"], capture_output=True, text=True)
            assert bad.returncode != 0 and "INVALID_ARGUMENT" in bad.stderr and "no_such_key" in bad.stderr, \
                (bad.returncode, bad.stderr)
            print("bad parameter: %s" % bad.stderr.strip().splitlines()[-1])
            assert server.health() == hpb.HealthCheckResponse.SERVING
        finally:
            rc = server.stop()
        assert rc == 0
        log = server.log_text()
        assert "Shepp" not in log and "stopped" in log, log
        print("PASS")


if __name__ == "__main__":
    main()
