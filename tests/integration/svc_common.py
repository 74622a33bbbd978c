"""Shared pieces of the recon5t service tests (not a test itself: no test_ prefix).

Python stubs are generated at test time with protoc --python_out into a temporary directory
(nothing generated is committed); calls go through grpcio's generic multi-callables, so no
grpc_tools plugin is needed. The server is started on a free loopback port and waited for
with grpc.health.v1 Check."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
import h5py
import numpy as np

R5_BIN = os.environ.get("R5_BIN", "")
R5_SOURCE = os.environ.get("R5_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
SANITIZE = os.environ.get("R5_SANITIZE", "0") in ("1", "ON", "TRUE", "true", "on")
RECON5T = os.path.join(R5_BIN, "service", "recon5t")
RECON5TD = os.path.join(R5_BIN, "service", "recon5td")
MAX_MESSAGE = 256 * 1024 * 1024
RECONSTRUCT = "/recon5t.v1.Recon/Reconstruct"


def skip(reason):
    print("SKIP:", reason)
    sys.exit(77)


def require_binaries():
    for path in (RECON5T, RECON5TD):
        if not os.access(path, os.X_OK):
            skip("%s not built" % path)


def load_protos(workdir):
    """Generates recon5t_pb2 and health_pb2 into workdir and imports them."""
    out = os.path.join(workdir, "py")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "--proto_path=" + R5_SOURCE, "--python_out=" + out,
                    "protos/recon5t.proto", "protos/health.proto"], check=True)
    sys.path.insert(0, out)
    from protos import health_pb2, recon5t_pb2  # noqa: E402
    return recon5t_pb2, health_pb2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), result.returncode,
                                                          result.stdout, result.stderr))
    return result


class Server:
    """recon5td on a free loopback port; stderr goes to a log file that tests can read."""

    def __init__(self, workdir, pb, hpb, extra=()):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.log_path = os.path.join(workdir, "recon5td-%d.log" % self.port)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([RECON5TD, "--listen", self.address, "--backend", "cpu"] + list(extra),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.pb, self.hpb = pb, hpb
        self.channel = grpc.insecure_channel(self.address, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)])
        self.wait_serving()

    def health(self, timeout=2.0):
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                         request_serializer=self.hpb.HealthCheckRequest.SerializeToString,
                                         response_deserializer=self.hpb.HealthCheckResponse.FromString)
        return check(self.hpb.HealthCheckRequest(), timeout=timeout).status

    def wait_serving(self, seconds=30.0):
        end = time.time() + seconds
        # the port first, with a plain socket: a gRPC channel whose first connect fails backs off
        # (1 s, 1.6 s, 2.6 s ...), which made every start take ~5 s for a server ready in 0.1 s
        while time.time() < end and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("recon5td exited with %d:\n%s" % (self.proc.returncode, self.log_text()))
            try:
                if self.health(0.5) == self.hpb.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise AssertionError("recon5td did not become healthy:\n" + self.log_text())

    def capabilities(self):
        call = self.channel.unary_unary("/recon5t.v1.Recon/Capabilities",
                                        request_serializer=self.pb.CapabilitiesRequest.SerializeToString,
                                        response_deserializer=self.pb.CapabilitiesReply.FromString)
        return call(self.pb.CapabilitiesRequest(), timeout=5)

    def reconstruct(self, messages, timeout=None, raw=False):
        """Streams messages (ScanMessage objects, or bytes when raw) and returns (events, status
        code, details)."""
        stream = self.channel.stream_stream(
            RECONSTRUCT,
            request_serializer=(lambda b: b) if raw else self.pb.ScanMessage.SerializeToString,
            response_deserializer=self.pb.ReconEvent.FromString)
        events = []
        try:
            for event in stream(iter(messages), timeout=timeout):
                events.append(event)
            return events, grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return events, e.code(), e.details()

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, expect_zero=True, timeout=60):
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("recon5td did not stop on SIGTERM:\n" + self.log_text())
        self.log.close()
        if expect_zero and self.proc.returncode != 0:
            raise AssertionError("recon5td exited %d:\n%s" % (self.proc.returncode, self.log_text()))
        return self.proc.returncode


# ------------------------------------------------------------------ ISMRMRD files → messages

def read_scan(path):
    """(xml, list of acquisitions as (head record, data float32 array, traj array))."""
    with h5py.File(path, "r") as f:
        raw = f["dataset/xml"][0]
        xml = raw.decode() if isinstance(raw, bytes) else str(raw)
        data = f["dataset/data"][:]
    return xml, data


HEAD_SCALARS = ["version", "flags", "measurement_uid", "scan_counter", "acquisition_time_stamp",
                "number_of_samples", "available_channels", "active_channels", "discard_pre", "discard_post",
                "center_sample", "encoding_space_ref", "trajectory_dimensions", "sample_time_us"]
HEAD_ARRAYS = ["physiology_time_stamp", "channel_mask", "position", "read_dir", "phase_dir", "slice_dir",
               "patient_table_position", "user_int", "user_float"]
IDX_FIELDS = ["kspace_encode_step_1", "kspace_encode_step_2", "average", "slice", "contrast", "phase",
              "repetition", "set", "segment"]


def acquisition(pb, record):
    head = record["head"]
    acq = pb.Acquisition()
    for name in HEAD_SCALARS:
        setattr(acq, name, head[name].item())
    for name in HEAD_ARRAYS:
        getattr(acq, name).extend(np.asarray(head[name]).tolist())
    idx = head["idx"]
    for name in IDX_FIELDS:
        setattr(acq.idx, name, int(idx[name]))
    acq.idx.user.extend(np.asarray(idx["user"]).tolist())
    acq.data = np.asarray(record["data"], dtype="<f4").tobytes()
    traj = np.asarray(record["traj"], dtype="<f4")
    acq.trajectory = traj.tobytes() if traj.size else b""
    return acq


def scan_messages(pb, xml, records, batch=16, pipeline="", params=None, outputs=None, job_id="",
                  priority=0, end=True, header=True, stop_after=None):
    """Generator of ScanMessages: header, batches, End (each can be left out for bad-input tests)."""
    if header:
        h = pb.ScanHeader(ismrmrd_xml=xml, pipeline=pipeline, client_job_id=job_id, priority=priority)
        for k, v in (params or {}).items():
            h.parameters.add(key=k, value=str(v))
        h.outputs.extend(outputs or [])
        yield pb.ScanMessage(header=h)
    for start in range(0, len(records), batch):
        if stop_after is not None and start >= stop_after:
            return
        b = pb.AcquisitionBatch()
        b.acquisitions.extend(acquisition(pb, r) for r in records[start:start + batch])
        yield pb.ScanMessage(batch=b)
    if end:
        yield pb.ScanMessage(end=pb.End())


# ------------------------------------------------------------------ reference images

def read_images(path):
    """Every image array in an ISMRMRD image file (or any HDF5 with image data), as a list of
    (name, ndarray) in file order: datasets named 'data' beside a 'header' (ISMRMRD images)."""
    found = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name.endswith("/data") and "header" in obj.parent:
                found.append((name, obj[()]))
        f.visititems(visit)
    return found


def magnitude(a):
    """|a| of an image array, ISMRMRD's complex compound (real, imag) included."""
    return np.abs(a["real"] + 1j * a["imag"].astype(np.float64)) if a.dtype.names else np.abs(a)


def image_arrays(events, pb, kind=0):
    """Images of one OutputKind from the events, each as a float32 (or complex64) array shaped
    [z, y, x], ordered by image_index."""
    out = []
    for e in events:
        if e.WhichOneof("kind") == "image" and e.image.kind == kind:
            img = e.image
            dtype = "<c8" if kind == pb.OUTPUT_COMPLEX else "<f4"
            x, y, z = img.matrix_size
            out.append((img.image_index, np.frombuffer(img.data, dtype=dtype).reshape(z, y, x)))
    return [a for _, a in sorted(out, key=lambda t: t[0])]


def event_kinds(events):
    return [e.WhichOneof("kind") for e in events]


def check_order(kinds):
    """Accepted first, then Progress..., Image..., Completed last; returns a problem or None."""
    if not kinds or kinds[0] != "accepted":
        return "first event is %s, not accepted" % (kinds[0] if kinds else "none")
    if kinds[-1] != "completed":
        return "last event is %s, not completed" % kinds[-1]
    if "progress" not in kinds:
        return "no progress event"
    first_image = kinds.index("image") if "image" in kinds else None
    if first_image is None:
        return "no image"
    if any(k != "image" for k in kinds[first_image:-1]):
        return "events after the first image that are not images: %s" % kinds[first_image:]
    if kinds.index("progress") > first_image:
        return "progress after images"
    return None


def make_phantom(workdir, name="x.h5", matrix="128", coils=8, kind="shepp-logan", extra=()):
    path = os.path.join(workdir, name)
    run([RECON5T, "phantom", "--kind", kind, "--matrix", str(matrix), "--coils", str(coils), "--out", path]
        + list(extra))
    return path


def offline_recon(workdir, scan, name="y.h5", extra=()):
    out = os.path.join(workdir, name)
    run([RECON5T, "recon", scan, "--out", out, "--backend", "cpu"] + list(extra))
    return out


def run_threads(targets):
    """Runs each callable on its own thread, all at once; returns the seconds until the last ended."""
    import threading
    start = time.time()
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.time() - start


def tempdir():
    return tempfile.TemporaryDirectory(prefix="r5svc-")
