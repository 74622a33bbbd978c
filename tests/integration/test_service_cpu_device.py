"""recon5td on two devices without a GPU: `backend = cpu-device` with R5_CPU_DEVICE=2 (the CPU
posing as a device, guarded device memory: recon/cpu/backend_cpu_device.h) starts one worker per
device, as it would with two GPUs, and scans streamed at once from four clients (Cartesian,
SENSE R=3, CS on a variable-density 2D scan, the 3D CS vessel-wall path decoupled into slabs)
come back bit-identical to the offline `recon5t recon --backend cpu` images, with both devices
used; Capabilities names the back end. Without R5_CPU_DEVICE the server refuses
`backend = cpu-device` at start with a message saying what it needs."""
import os
import re
import subprocess
import sys
import threading

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

# (name, phantom arguments, recon arguments)
SCANS = [
    ("cart", ["--matrix", "96", "--coils", "8"], []),
    ("sense", ["--matrix", "96", "--coils", "8", "--accel", "3", "--calib", "24"], ["--pipeline", "sense"]),
    ("cs2d", ["--matrix", "96", "--coils", "8", "--sampling", "poisson", "--accel", "4", "--calib", "20"],
     ["--pipeline", "cs"]),
    ("cs3d", ["--kind", "vessel-wall", "--matrix", "64,64,32", "--fov", "48,48,24", "--coils", "6", "--sampling", "poisson",
              "--accel", "4"], ["--pipeline", "cs", "--param", "decouple=1", "--param", "slab=8", "--iters", "10"]),
]


def pipeline_params(pb, recon):
    pipeline, params, i = "", {}, 0
    while i < len(recon):
        if recon[i] == "--pipeline":
            pipeline = recon[i + 1]
        elif recon[i] == "--iters":
            params["iters"] = recon[i + 1]
        elif recon[i] == "--param":
            key, value = recon[i + 1].split("=", 1)
            params[key] = value
        i += 2
    return pipeline, params


def main():
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        # refused without R5_CPU_DEVICE, with the reason
        env = {k: v for k, v in os.environ.items() if k != "R5_CPU_DEVICE"}
        r = subprocess.run([sc.RECON5TD, "--listen", "127.0.0.1:%d" % sc.free_port(), "--backend", "cpu-device"],
                           capture_output=True, text=True, env=env, timeout=30)
        if r.returncode == 0 or "R5_CPU_DEVICE" not in r.stdout + r.stderr:
            print("FAIL: backend = cpu-device without R5_CPU_DEVICE: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
            sys.exit(1)
        print("PASS: without R5_CPU_DEVICE: %s" % (r.stdout + r.stderr).strip().splitlines()[-1][:200])

        scans = []
        for name, phantom, recon in SCANS:
            path = _phantom(work, name, phantom)
            base = os.path.join(work, "ref-" + name)
            sc.run([sc.RECON5T, "recon", path, "--out", base + ".cfl", "--backend", "cpu"] + recon)
            xml, records = sc.read_scan(path)
            scans.append((name, xml, records, recon, np.fromfile(base + ".cfl", dtype="<c8")))

        os.environ["R5_CPU_DEVICE"] = "2"
        server = sc.Server(work, pb, hpb, ["--backend", "cpu-device", "--memory-budget-mb", "2048"])
        failures, lock = [], threading.Lock()
        try:
            caps = server.capabilities()
            text = str(caps)
            if "cpu-device" not in text:
                failures.append("Capabilities does not name cpu-device:\n%s" % text[:600])

            def client(i):
                name, xml, records, recon, reference = scans[i]
                pipeline, params = pipeline_params(pb, recon)
                msgs = sc.scan_messages(pb, xml, records, batch=8, job_id="dev-" + name, pipeline=pipeline,
                                        params=params, outputs=[pb.OUTPUT_COMPLEX])
                events, code, details = server.reconstruct(msgs, timeout=300)
                volumes = sc.image_arrays(events, pb, pb.OUTPUT_COMPLEX)
                got = np.concatenate([v.reshape(-1) for v in volumes]) if volumes else np.zeros(0, np.complex64)
                problem = None
                if code != grpc.StatusCode.OK:
                    problem = "%s: %s %s" % (name, code.name, details)
                elif got.size != reference.size or not np.array_equal(got.view(np.uint32), reference.view(np.uint32)):
                    diff = np.max(np.abs(got - reference)) if got.size == reference.size else "size"
                    problem = "%s: images differ from the offline cpu recon (max |diff| %s)" % (name, diff)
                with lock:
                    if problem:
                        failures.append(problem)
                    else:
                        print("PASS: %s on cpu-device: %d values bit-identical to the cpu recon" % (name, got.size))

            elapsed = sc.run_threads([lambda i=i: client(i) for i in range(len(scans))])
            log = server.log_text()
            devices = set(re.findall(r"cpu-device (\d) \(guarded memory", log))
            if devices != {"0", "1"}:
                failures.append("expected workers on cpu-device 0 and 1, the log shows %s:\n%s" %
                                (sorted(devices), log[-2000:]))
            else:
                print("PASS: %d scans in %.1f s over cpu-device 0 and 1" % (len(scans), elapsed))
            if server.health() != hpb.HealthCheckResponse.SERVING:
                failures.append("not serving after the scans")
        finally:
            server.stop(expect_zero=not failures)
        if failures:
            print("FAIL:\n" + "\n".join(failures))
            sys.exit(1)
        print("PASS")


def _phantom(work, name, phantom):
    path = os.path.join(work, name + ".h5")
    sc.run([sc.RECON5T, "phantom"] + phantom + ["--out", path])
    return path


if __name__ == "__main__":
    main()
