"""Many matrix sizes, one server: 40 jobs, each a different matrix (2D and 3D, cartesian and
SENSE), one worker. FFT plans and centring ramps are cached per shape in the worker's context;
the cache is bounded (R5_CTX_FFT_CACHE_ENTRIES shapes, least recently used out), so the
server's resident memory must plateau: sizes come in a scrambled order within a fixed range.

Two bounds on RSS (measured on the 2-core CPU machine, CPU back end, 2 runs):
- from the first few jobs to the end: after job EARLY the cache holds 4 shapes; RSS then grew
  3.0-3.2 MB to its peak (16 shapes cached, then flat), bound EARLY_GROWTH_MB = 1.3x that;
- once the cache is full: after job SETTLED, RSS may grow by at most GROWTH_MB over the other 20
  (measured +0.3 MB; without the bound every new shape stayed cached: +5.8 MB and growing).
On a GPU (R5_SHAPES_BACKEND=gpu, or auto when the build has CUDA and nvidia-smi sees a device)
the same jobs run on the CUDA back end and the server's device memory (nvidia-smi, this pid)
may grow by at most DEVICE_GROWTH_MB after job SETTLED: the context's memory pool keeps freed
blocks for reuse, so it should stay at the largest job's working set (prediction: < 16 MB of
growth; not yet measured on a device). RSS is only reported there: CUDA loads cuFFT's kernels
lazily, one per new transform size, which is host memory that grows with the sizes seen."""
import os
import shutil
import subprocess
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

GROWTH_MB = 4
EARLY = 4
EARLY_GROWTH_MB = 4.2
DEVICE_GROWTH_MB = 64
N_JOBS = 40
SETTLED = 20  # the cache is full (16 shapes) by then


def device_mb(pid):
    """This process's device memory in MB (nvidia-smi), or None."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            return float(parts[1])
    return 0.0


def gpu_wanted():
    choice = os.environ.get("R5_SHAPES_BACKEND", "auto")
    if choice != "auto":
        return choice == "gpu"
    if os.environ.get("R5_HAVE_CUDA", "0") not in ("1", "ON", "TRUE", "true", "on") or not shutil.which("nvidia-smi"):
        return False
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return listed.returncode == 0 and "GPU" in listed.stdout


def run_jobs(work, pb, hpb, backend):
    """RSS (MB) and device memory (MB, or None) after each job."""
    server = sc.Server(work, pb, hpb, ["--workers", "1", "--backend", backend])
    rss, device = [], []
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
                print("FAIL: job %d (%s %s) on %s: %s %s" % (n, kind, matrix, backend, code.name, details))
                sys.exit(1)
            time.sleep(0.1)
            rss.append(server.rss_kb() / 1024.0)
            device.append(device_mb(server.proc.pid) if backend == "gpu" else None)
    finally:
        server.stop()
    return rss, device


def check_rss(rss, backend):
    early, base, last = rss[EARLY - 1], rss[SETTLED - 1], rss[-1]
    peak_early, peak = max(rss[EARLY - 1:]), max(rss[SETTLED - 1:])
    print("%s: RSS after job 1 %.1f MB, job %d %.1f MB, job %d %.1f MB, job %d %.1f MB "
          "(peak since job %d: +%.1f MB, since job %d: +%.1f MB)" %
          (backend, rss[0], EARLY, early, SETTLED, base, N_JOBS, last, EARLY, peak_early - early, SETTLED,
           peak - base))
    ok = True
    if peak_early - early > EARLY_GROWTH_MB:
        print("FAIL: RSS grew %.1f MB after job %d (bound %.1f MB)" % (peak_early - early, EARLY, EARLY_GROWTH_MB))
        ok = False
    if peak - base > GROWTH_MB:
        print("FAIL: RSS grew %.1f MB after job %d (bound %d MB)" % (peak - base, SETTLED, GROWTH_MB))
        ok = False
    return ok


def check_device(device):
    if any(d is None for d in device):
        print("FAIL: nvidia-smi did not report the server's device memory")
        return False
    base, peak = device[SETTLED - 1], max(device[SETTLED - 1:])
    print("gpu: device memory after job 1 %.0f MB, job %d %.0f MB, job %d %.0f MB (peak since job %d: +%.0f MB)" %
          (device[0], SETTLED, base, N_JOBS, device[-1], SETTLED, peak - base))
    if peak - base > DEVICE_GROWTH_MB:
        print("FAIL: device memory grew %.0f MB after job %d (bound %d MB)" % (peak - base, SETTLED, DEVICE_GROWTH_MB))
        return False
    return True


def main():
    sc.require_binaries()
    if sc.SANITIZE:
        sc.skip("RSS bounds are meaningless under a sanitizer's allocator")
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        rss, _ = run_jobs(work, pb, hpb, "cpu")
        ok = check_rss(rss, "cpu")
        if gpu_wanted():
            rss, device = run_jobs(work, pb, hpb, "gpu")
            check_rss(rss, "gpu (RSS reported only: CUDA loads cuFFT kernels lazily, per new size)")
            ok = check_device(device) and ok
        if not ok:
            sys.exit(1)
        print("PASS")


if __name__ == "__main__":
    main()
