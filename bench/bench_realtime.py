#!/usr/bin/python3
"""recon5td pipeline realtime: latency from a frame's last spoke sent to its Image event received,
for a golden-angle radial stream paced like a scanner (one spoke per TR).

usage: R5_BIN=build /usr/bin/python3 bench/bench_realtime.py [--n 256] [--coils 8] [--tr-ms 2.2]
       [--frames 210] [--frame-spokes 21] [--frame-step 21] [--mode grid] [--batch 1]
       [--server HOST:PORT] [--backend cpu] [--source synthetic|FILE.h5] [--param key=value ...]
       [--server-arg=--fft-wisdom=PATH ...]

The scan: 2D N^2 with a 2x oversampled readout (2N samples per spoke), `coils` coils, spokes at
the golden angle (111.246 deg), k-space from tests/integration/svc_radial.py (analytic: Gaussian
blobs times Gaussian coil sensitivities, one blob pulsing) unless --source names an ISMRMRD
radial file (e.g. `recon5t phantom --kind dynamic`), whose acquisitions are sent as they are.
Spokes go out one message per TR (--batch spokes per message every batch x TR); the client
stamps each message just before it yields it to grpcio, and each Image event (magnitude) when
it comes off the stream. Latency of frame f = received(f) - sent(its last spoke,
f * step + frame_spokes - 1). Printed: a table of p50 / p99 / max over the frames, the server's
own share (Completed: last spoke sorted in -> Image queued), the pacing achieved (mean and worst
gap between spokes), frames sent / dropped, and the server's and client's CPU seconds (user+sys)
beside the wall time. Without --server, a recon5td is started on a free port (--backend).

Measured (2026-12-02, this 2-core CPU shared with other jobs; defaults: 256^2, 8 coils, 512
samples/spoke, TR 2.2 ms, frame_spokes 21 = frame_step 21, mode grid, NUFFT 1.25 / 1e-3, 210
frames; latencies in ms, client-side = last spoke yielded -> Image received):

| run | load (1 min) | p50 | p99 | max | server p50 | server p99 |
|---|---|---|---|---|---|---|
| synthetic, fft_wisdom, realtime_threads 0 | 3.7 | 13.3 | 21.5 | 26.4 | 13.2 | 21.5 |
| synthetic, fft_wisdom, realtime_threads 0 | 2.8 | 12.5 | 16.9 | 30.1 | 12.1 | 16.5 |
| synthetic, fft_wisdom, realtime_threads 1 | 2.5 | 12.2 | 20.8 | 25.5 | 11.6 | 20.3 |
| synthetic, fft_wisdom, realtime_threads 1 | 2.4 | 12.6 | 23.3 | 26.1 | 12.1 | 22.9 |
| synthetic, FFTW_ESTIMATE | 3.3 | 10.7 | 25.0 | 33.0 | 10.1 | 23.0 |
| `phantom --kind dynamic` 256^2, fft_wisdom | 3.2 | 12.6 | 76.3 | 108.8 | 12.1 | 47.9 |
| `phantom --kind dynamic` 256^2, fft_wisdom | 3.2 | 12.1 | 32.8 | 64.9 | 11.7 | 27.7 |
| synthetic, fft_wisdom, realtime_threads 0 | 13 | 21.6 | 88.5 | 169 | 20.4 | 74.0 |
| synthetic, fft_wisdom, realtime_threads 1 | 12.7 | 19.0 | 44.3 | 118 | 17.7 | 43.8 |

Target p99 <= 40 ms: met whenever the machine's load is near its 2 cores (every quiet run);
at load 12-14 (six other sessions building and benchmarking) p99 is 44-90 ms and single runs
stall for 0.7-2.5 s (the client's own pacing stalls by up to 200 ms then too). Gridding takes 10-12 ms
(wall) per frame in the quiet runs ("gridding in the server" / frames); the dynamic phantom's worse tails coincide with 55-60 ms
stalls of the client's pacing.

Mode iterative (2026-12-03, load 5-11 on 2 cores, so walls are inflated 2-3x; `--mode iterative
--frame-spokes 21 --frame-step T --param normal=N`, 5 CG iterations, the server's CPU per frame is
the steady figure): normal=toeplitz (the 2N kernel per frame, as before the kept solver) 1.3 CPU s
a frame, normal=nufft (the default) 0.2 CPU s (bench_rt_iterative splits the stages). Neither
follows a 46 ms frame rate on this CPU, so without max_pending frames queue (30 frames: p50 / p99
40.9 / 72.0 s toeplitz, 3.3 / 6.3 s nufft at step 21; 62.7 / 121.7 s and 6.1 / 8.9 s at step 5).
With --param max_pending=1 and the default 210 frames: step 21 toeplitz 5 frames shown, p50 /
p99 4464 / 8549 ms; nufft 43 frames, 214 / 919 ms; step 5 toeplitz 2 frames, 3758 / 4638 ms;
nufft 9 frames (a 2.3 s scan), 218 / 937 ms."""
import argparse
import os
import subprocess
import sys
import threading
import time

import grpc
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import svc_common as sc  # noqa: E402
import svc_radial as rad  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def parameters(args):
    pairs = [("frame_spokes", args.frame_spokes), ("frame_step", args.frame_step), ("mode", args.mode)]
    return pairs + [tuple(p.split("=", 1)) for p in args.param]


def synthetic_messages(pb, args, n_spokes):
    """Pre-serialised ScanMessages: header, then one per `batch` spokes (k-space made in chunks)."""
    n_read = 2 * args.n
    xml = rad.header_xml(args.n, args.coils, n_read, n_spokes)
    h = pb.ScanHeader(ismrmrd_xml=xml, pipeline="realtime", client_job_id="bench-realtime")
    for key, value in parameters(args):
        h.parameters.add(key=key, value=str(value))
    header = pb.ScanMessage(header=h).SerializeToString()
    batches = []
    chunk = 256
    for start in range(0, n_spokes, chunk):
        count = min(chunk, n_spokes - start)
        traj = rad.trajectory(args.n, n_read, start, count)
        ksp = rad.kspace(args.n, args.coils, traj, np.arange(start, start + count), noise=1e-4, seed=start)
        for i in range(count):
            batches.append(rad.acquisition(pb, start + i, n_read, args.coils, ksp[:, i, :], traj[i]))
    out = []
    for start in range(0, n_spokes, args.batch):
        b = pb.AcquisitionBatch()
        b.acquisitions.extend(batches[start:start + args.batch])
        out.append((start + len(b.acquisitions) - 1, pb.ScanMessage(batch=b).SerializeToString()))
    return header, out


def file_messages(pb, args, path):
    xml, records = sc.read_scan(path)
    h = pb.ScanHeader(ismrmrd_xml=xml, pipeline="realtime", client_job_id="bench-realtime")
    for key, value in parameters(args):
        h.parameters.add(key=key, value=str(value))
    flags = records["head"]["flags"].astype(np.uint64)
    imaging = records[(flags & np.uint64(1 << 18)) == 0]
    out = []
    for start in range(0, len(imaging), args.batch):
        b = pb.AcquisitionBatch()
        b.acquisitions.extend(sc.acquisition(pb, r) for r in imaging[start:start + args.batch])
        out.append((start + len(b.acquisitions) - 1, pb.ScanMessage(batch=b).SerializeToString()))
    return pb.ScanMessage(header=h).SerializeToString(), out, len(imaging)


def run(channel, pb, header, batches, tr_s, batch):
    sent = {}  # last spoke of the message -> perf_counter when yielded
    end = pb.ScanMessage(end=pb.End()).SerializeToString()

    def paced():
        yield header
        t0 = time.perf_counter() + 0.2  # the first spoke once the stream is up
        for i, (last, data) in enumerate(batches):
            due = t0 + (i + 1) * batch * tr_s
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent[last] = time.perf_counter()
            yield data
        yield end

    received, completed = {}, None
    call = channel.stream_stream(sc.RECONSTRUCT, request_serializer=lambda b: b,
                                 response_deserializer=pb.ReconEvent.FromString)
    for event in call(paced(), timeout=600):
        kind = event.WhichOneof("kind")
        if kind == "image" and event.image.kind == pb.OUTPUT_MAGNITUDE:
            received[event.image.image_index - 1] = time.perf_counter()
        elif kind == "completed":
            completed = event.completed
    return sent, received, completed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--tr-ms", type=float, default=2.2)
    ap.add_argument("--frames", type=int, default=210)
    ap.add_argument("--frame-spokes", type=int, default=21)
    ap.add_argument("--frame-step", type=int, default=21)
    ap.add_argument("--mode", default="grid")
    ap.add_argument("--param", action="append", default=[], help="another realtime parameter key=value")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--server", default="")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--source", default="synthetic")
    ap.add_argument("--server-arg", action="append", default=[], help="extra recon5td flag (repeatable), "
                    "e.g. --server-arg=--fft-wisdom=/tmp/r5.wisdom")
    args = ap.parse_args()

    workdir = sc.tempfile.mkdtemp(prefix="r5rt-")
    pb, hpb = sc.load_protos(workdir)
    if args.source == "synthetic":
        n_spokes = (args.frames - 1) * args.frame_step + args.frame_spokes
        t = time.time()
        header, batches = synthetic_messages(pb, args, n_spokes)
        print("k-space: %d spokes x %d samples x %d coils made in %.1f s" % (n_spokes, 2 * args.n, args.coils,
                                                                           time.time() - t))
    else:
        header, batches, n_spokes = file_messages(pb, args, args.source)
    frames = (n_spokes - args.frame_spokes) // args.frame_step + 1

    server = None
    if args.server:
        address = args.server
    else:
        extra = ["--backend", args.backend]
        for a in args.server_arg:
            extra.extend(a.split("=", 1) if a.startswith("--") and "=" in a else [a])
        server = sc.Server(workdir, pb, hpb, extra=extra)
        address = server.address
    channel = server.channel if server else grpc.insecure_channel(address, options=[
        ("grpc.max_receive_message_length", sc.MAX_MESSAGE)])
    server_cpu0 = cpu_seconds(server.proc.pid) if server else 0
    client_cpu0 = time.process_time()
    wall0 = time.time()
    try:
        sent, received, completed = run(channel, pb, header, batches, args.tr_ms / 1000.0, args.batch)
    except grpc.RpcError as e:
        sys.exit("bench_realtime: %s: %s" % (e.code().name, e.details()))
    wall = time.time() - wall0
    server_cpu = cpu_seconds(server.proc.pid) - server_cpu0 if server else float("nan")
    client_cpu = time.process_time() - client_cpu0
    if server:
        server.stop()

    stamps = np.array([sent[k] for k in sorted(sent)])
    gaps = np.diff(stamps) / args.batch * 1e3
    latency = []
    for f in range(frames):
        last = f * args.frame_step + args.frame_spokes - 1
        carrier = min(k for k in sent if k >= last)  # the message that carried the frame's last spoke
        if f in received:
            latency.append((received[f] - sent[carrier]) * 1e3)
    latency = np.array(latency)
    load = os.getloadavg()
    print("\nrecon5td realtime, %d^2, %d coils, %d samples/spoke, TR %.1f ms, frame_spokes %d, frame_step %d, "
          "mode %s, batch %d" % (args.n, args.coils, 2 * args.n, args.tr_ms, args.frame_spokes, args.frame_step,
                                 args.mode, args.batch))
    print("load average %.2f %.2f %.2f on %d CPUs (the machine is shared)" % (load + (os.cpu_count(),)))
    print("pacing: spoke gap mean %.3f ms, worst %.2f ms" % (gaps.mean(), gaps.max()))
    print("| frames | received | dropped | p50 ms | p99 ms | max ms | server p50 ms | server p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    print("| %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f |" % (
        frames, len(latency), completed.frames_dropped if completed else -1, np.percentile(latency, 50),
        np.percentile(latency, 99), latency.max(), 1e3 * completed.frame_latency_p50 if completed else -1,
        1e3 * completed.frame_latency_p99 if completed else -1))
    print("wall %.1f s; server CPU %.1f s (user+sys), client CPU %.1f s; gridding in the server %.2f s total" % (
        wall, server_cpu, client_cpu, completed.timings[0].seconds if completed and completed.timings else -1))


if __name__ == "__main__":
    main()
