"""recon5td's MRD v1 listener under the service's rules (issue 16, items 1-3):
  1. int16 / uint16 output: the IMAGE header's data type, and values equal to the float32 image
     scaled so that its largest magnitude is 4095 and rounded (within 1 count), ScaleFactor in
     the meta attributes;
  2. start-up refusals: mrd_listen off loopback without mrd_insecure, with mrd_insecure but no
     mrd_allow, a malformed mrd_allow entry -> non-zero exit naming the setting;
  3. mrd_allow: a peer outside the list gets TEXT ERR + CLOSE; CIDR prefixes, IPv6, and IPv4
     peers on a dual-stack [::] listener (::ffff:a.b.c.d) matched against IPv4 entries;
  4. admission: max_streams and max_streams_per_peer count MRD connections (ERR naming the
     limit, then CLOSE), the slots come back when the connections end; one host's gRPC streams
     and MRD connections share its per-peer limit;
  5. ingest_idle_s = 2: a client that stops after its HEADER gets ERR "no message for ..." +
     CLOSE, one that sends nothing is closed, the memory comes back, the server still serves;
  6. QUERY: gadgetron::info and other Gadgetron keys answered with RESPONSE (7) carrying the
     correlation id, an unknown key refused with ERR;
  7. drain (SIGTERM): a new MRD connection is refused with ERR naming the drain, one still
     ingesting is ended with ERR when the grace is over;
  8. CancelJob (admin token) of a job still ingesting over MRD: ERR "cancelled by admin" + CLOSE;
  9. a client killed while its job runs: the job is cancelled at the next progress message that
     cannot go out (seconds, not the job's 35 s), and the server serves the next connection.
Only recon5t and Python here (no reference peers needed)."""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import svc_common as sc  # noqa: E402
import numpy as np  # noqa: E402

CLOSE, TEXT, QUERY, RESPONSE = 4, 5, 6, 7


def connect(port, host="127.0.0.1", source=None, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.settimeout(10)
    s.connect((host, port))
    return s


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def read_messages(s, seconds=15):
    """(id, payload) of what the server sends until CLOSE, the socket closing (then "EOF" last)
    or seconds passing (then "TIMEOUT" last). TEXT payloads are str, RESPONSE (corr, str)."""
    s.settimeout(seconds)
    out = []
    try:
        while True:
            (mid,) = struct.unpack("<H", recv_exact(s, 2))
            if mid == CLOSE:
                out.append((CLOSE, None))
                return out
            if mid == TEXT:
                (n,) = struct.unpack("<I", recv_exact(s, 4))
                out.append((TEXT, recv_exact(s, n).rstrip(b"\0").decode(errors="replace")))
            elif mid == RESPONSE:
                corr, n = struct.unpack("<QQ", recv_exact(s, 16))
                out.append((RESPONSE, (corr, recv_exact(s, n).decode(errors="replace"))))
            else:
                out.append((mid, "unexpected message"))
                return out
    except (EOFError, ConnectionResetError):
        out.append(("EOF", None))
    except socket.timeout:
        out.append(("TIMEOUT", None))
    return out


def texts(messages):
    return [p for i, p in messages if i == TEXT]


def config_file(name="default"):
    return struct.pack("<H", 1) + name.encode().ljust(1024, b"\0")


def header(xml):
    b = xml.encode() + b"\0"
    return struct.pack("<HI", 3, len(b)) + b


def query(corr, key):
    b = key.encode()
    return struct.pack("<HQQQ", QUERY, 0, corr, len(b)) + b


def expect_refused(s, words, name):
    """ERR naming the reason, then CLOSE."""
    m = read_messages(s)
    s.close()
    errs = [t for t in texts(m) if t.startswith("ERR")]
    print("%-34s: %s" % (name, errs[0] if errs else m))
    assert errs and all(w in errs[0] for w in words), "%s: %r" % (name, m)
    assert m[-1][0] == CLOSE, "%s: no CLOSE after the ERR: %r" % (name, m)


def active_streams(server):
    return server.capabilities().active_streams


def wait_streams(server, n, seconds=10):
    end = time.time() + seconds
    while active_streams(server) != n and time.time() < end:
        time.sleep(0.05)
    assert active_streams(server) == n, "active_streams %d, expected %d" % (active_streams(server), n)


def send_mrd(w, port, scan, out, params=()):
    cmd = [sc.RECON5T, "send", scan, "--protocol", "mrd", "--server", "127.0.0.1:%d" % port, "--out", out,
           "--quiet"]
    for p in params:
        cmd += ["--param", p]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "recon5t send %s: rc %d\n%s" % (list(params), r.returncode, r.stderr)
    return out


def image_file(out, ext):
    names = sorted(f for f in os.listdir(out) if f.startswith("magnitude_") and f.endswith("." + ext))
    assert names, "no magnitude .%s image in %s: %s" % (ext, out, os.listdir(out))
    meta = open(os.path.join(out, names[0][:-len(ext)] + "txt")).read()
    return os.path.join(out, names[0]), meta


def check_integer_outputs(w, port, scan):
    f32, _ = image_file(send_mrd(w, port, scan, os.path.join(w, "f32")), "f32")
    ref = np.fromfile(f32, dtype="<f4").astype(np.float64)
    scale = 4095.0 / np.abs(ref).max()
    for kind, ext, dtype in (("int16", "s16", "<i2"), ("uint16", "u16", "<u2")):
        path, meta = image_file(send_mrd(w, port, scan, os.path.join(w, kind), ["data_type=" + kind]), ext)
        assert ("type %s\n" % ext) in meta, "data_type=%s: IMAGE header says %s" % (kind, meta.split("\n")[0])
        got = np.fromfile(path, dtype=dtype).astype(np.float64)
        assert got.shape == ref.shape, "%s: %s values, float32 %s" % (kind, got.shape, ref.shape)
        err = np.abs(got - np.rint(ref * scale)).max()
        sf = float(meta.split("<name>ScaleFactor</name><value>")[1].split("<")[0])
        print("data_type=%-6s: IMAGE data type %s, max %d, max |value - rint(f32 * %.4g)| = %g counts, "
              "ScaleFactor %.6g" % (kind, ext, got.max(), scale, err, sf))
        assert got.max() == 4095, "%s: largest value %d, expected 4095" % (kind, got.max())
        assert err <= 1, "%s: differs from the windowed float image by %g counts" % (kind, err)
        assert abs(sf / scale - 1) < 1e-6, "ScaleFactor %g, expected %g" % (sf, scale)


def check_startup_refusals(w):
    port = sc.free_port()
    cases = [
        ("off loopback, no mrd_insecure", ["--mrd-listen", "0.0.0.0:%d" % port], "mrd_insecure"),
        ("mrd_insecure without mrd_allow", ["--mrd-listen", "0.0.0.0:%d" % port, "--mrd-insecure", "1"],
         "mrd_allow"),
        ("malformed mrd_allow entry", ["--mrd-listen", "127.0.0.1:%d" % port, "--mrd-allow", "10.0.0.0/8, 10.1/33"],
         "10.1/33"),
        ("mrd_allow host bits set", ["--mrd-listen", "127.0.0.1:%d" % port, "--mrd-allow", "192.168.1.7/24"],
         "192.168.1.7/24"),
    ]
    for name, flags, word in cases:
        r = subprocess.run([sc.RECON5TD, "--listen", "127.0.0.1:%d" % sc.free_port(), "--backend", "cpu"] + flags,
                           capture_output=True, text=True, timeout=60)
        text = (r.stdout + r.stderr).strip().splitlines()
        line = [t for t in text if word in t]
        print("start-up %-31s: exit %d, %s" % (name, r.returncode, line[0] if line else text[-1:]))
        assert r.returncode != 0, "%s: recon5td started (exit %d)" % (name, r.returncode)
        assert line, "%s: no message naming %s:\n%s" % (name, word, "\n".join(text))


def check_allow_lists(w, pb, hpb):
    port = sc.free_port()
    server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "127.0.0.1:%d" % port, "--mrd-allow", "10.0.0.0/8, fd00::/8"])
    try:
        s = connect(port)
        s.sendall(config_file() + struct.pack("<H", CLOSE))
        expect_refused(s, ["not in mrd_allow"], "peer 127.0.0.1 not in the list")
    finally:
        server.stop()
    # a dual-stack listener: 127.0.0.1 arrives as ::ffff:127.0.0.1 and matches the IPv4 prefix
    port = sc.free_port()
    server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "[::]:%d" % port, "--mrd-insecure", "1",
                                          "--mrd-allow", "127.0.0.0/8"])
    try:
        s = connect(port)
        s.sendall(struct.pack("<H", CLOSE))
        m = read_messages(s)
        s.close()
        print("%-34s: %s" % ("[::] listener, IPv4 peer allowed", m))
        assert m == [(CLOSE, None)], "IPv4-mapped peer in 127.0.0.0/8: %r" % m
        s = connect(port, host="::1", family=socket.AF_INET6)
        s.sendall(struct.pack("<H", CLOSE))
        expect_refused(s, ["::1", "not in mrd_allow"], "[::] listener, ::1 not in the list")
    finally:
        server.stop()
    port = sc.free_port()
    server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "[::1]:%d" % port, "--mrd-allow", "::1"])
    try:
        s = connect(port, host="::1", family=socket.AF_INET6)
        s.sendall(query(41, "ismrmrd::version") + struct.pack("<H", CLOSE))
        m = read_messages(s)
        s.close()
        print("%-34s: %s" % ("[::1] listener, ::1 allowed", m))
        assert m[0][0] == RESPONSE and m[-1][0] == CLOSE and not texts(m), m
    finally:
        server.stop()


def check_queries(port):
    s = connect(port)
    s.sendall(query(7, "gadgetron::info") + query(8, "gadgetron::info::cuda") + query(9, "ismrmrd::version")
              + struct.pack("<H", CLOSE))
    m = read_messages(s)
    s.close()
    responses = [p for i, p in m if i == RESPONSE]
    print("QUERY gadgetron::info etc.       : %d RESPONSEs, ids %s, %r" % (len(responses), [c for c, _ in responses],
                                                                          responses[0][1].splitlines()[:2]))
    assert [c for c, _ in responses] == [7, 8, 9], m
    assert "CUDA Support" in responses[0][1] and "System Memory size" in responses[0][1], responses[0]
    assert responses[1][1] in ("0", "1") and responses[2][1].count(".") == 2, responses
    assert not texts(m) and m[-1][0] == CLOSE, "a query-only connection gets no ERR: %r" % m
    s = connect(port)
    s.sendall(query(3, "gadgetron::no::such::key") + struct.pack("<H", CLOSE))
    expect_refused(s, ["QUERY", "gadgetron::no::such::key", "not answered"], "QUERY unknown key")


def check_admission(w, pb, hpb, xml):
    port = sc.free_port()
    server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "127.0.0.1:%d" % port, "--max-streams", "2",
                                          "--max-streams-per-peer", "1"])
    try:
        a = connect(port)
        a.sendall(config_file() + header(xml))
        wait_streams(server, 1)
        expect_refused(connect(port), ["max_streams_per_peer = 1"], "second connection from 127.0.0.1")
        b = connect(port, source="127.0.0.2")
        b.sendall(config_file())
        wait_streams(server, 2)
        expect_refused(connect(port, source="127.0.0.3"), ["max_streams = 2"], "third peer, max_streams = 2")
        a.close()
        b.close()
        wait_streams(server, 0)
        s = connect(port, source="127.0.0.3")
        s.sendall(struct.pack("<H", CLOSE))
        m = read_messages(s)
        s.close()
        print("%-34s: %s" % ("after both closed", m))
        assert m == [(CLOSE, None)], m
        assert server.proc.poll() is None
    finally:
        server.stop()


def check_shared_peer_limit(w, pb, hpb, xml):
    """One host's gRPC streams and MRD connections count together against max_streams_per_peer
    (the MRD peer is named as gRPC names it): a held gRPC stream makes the host's MRD connection
    refused, and a held MRD connection its gRPC stream (RESOURCE_EXHAUSTED)."""
    import grpc
    import threading
    port = sc.free_port()
    server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "127.0.0.1:%d" % port, "--max-streams-per-peer", "1"])
    try:
        release, result = threading.Event(), {}

        def held():
            yield next(sc.scan_messages(pb, xml, [], end=False))
            release.wait(30)

        t = threading.Thread(target=lambda: result.update(r=server.reconstruct(held(), timeout=60)))
        t.start()
        wait_streams(server, 1)
        expect_refused(connect(port), ["max_streams_per_peer = 1"], "MRD while a gRPC stream is held")
        release.set()
        t.join(60)
        wait_streams(server, 0)
        a = connect(port)
        a.sendall(config_file() + header(xml))
        wait_streams(server, 1)
        _, code, details = server.reconstruct(sc.scan_messages(pb, xml, []), timeout=30)
        a.close()
        print("%-34s: %s %s" % ("gRPC while an MRD one is held", code.name, details[:60]))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_streams_per_peer" in details, (code, details)
        wait_streams(server, 0)
    finally:
        server.stop()


def check_idle(w, pb, hpb, xml, scan):
    port = sc.free_port()
    server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "127.0.0.1:%d" % port, "--ingest-idle-s", "2"])
    try:
        send_mrd(w, port, scan, os.path.join(w, "warm"))  # the first job's allocations are not a leak
        base = server.rss_kb()
        t0 = time.time()
        s = connect(port)
        s.sendall(config_file() + header(xml))
        m = read_messages(s, seconds=15)
        elapsed = time.time() - t0
        s.close()
        errs = [t for t in texts(m) if t.startswith("ERR")]
        print("stalled after HEADER             : %.1f s, %s" % (elapsed, errs[0] if errs else m))
        assert errs and "no message for 2.0 s" in errs[0] and "ingest_idle_s" in errs[0], m
        assert m[-1][0] == CLOSE, m
        assert 1.8 <= elapsed <= 10, "ended after %.1f s with ingest_idle_s = 2" % elapsed
        t0 = time.time()
        s = connect(port)
        s.sendall(config_file() + header(xml) + struct.pack("<H", 1008) + b"\0" * 100)  # stops inside a message
        m = read_messages(s, seconds=15)
        elapsed = time.time() - t0
        s.close()
        errs = [t for t in texts(m) if t.startswith("ERR")]
        print("stalled inside an ACQUISITION    : %.1f s, %s" % (elapsed, errs[0][:60] if errs else m))
        assert errs and "no message for 2.0 s" in errs[0] and m[-1][0] == CLOSE and 1.8 <= elapsed <= 10, m
        t0 = time.time()
        s = connect(port)
        m = read_messages(s, seconds=15)
        elapsed = time.time() - t0
        s.close()
        print("connected, sent nothing          : closed after %.1f s, %s" % (elapsed, m))
        assert m[-1][0] in (CLOSE, "EOF") and 1.8 <= elapsed <= 10, m
        wait_streams(server, 0)
        out = send_mrd(w, port, scan, os.path.join(w, "after-idle"))
        assert os.listdir(out)
        end = time.time() + 20
        while server.rss_kb() > base + 20 * 1024 and time.time() < end:
            time.sleep(0.2)
        print("RSS                              : %d KiB before, %d KiB after the idle connections"
              % (base, server.rss_kb()))
        assert server.rss_kb() <= base + 20 * 1024, "RSS grew by more than 20 MiB"
    finally:
        server.stop()


def check_drain(w, pb, hpb, xml):
    port = sc.free_port()
    server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "127.0.0.1:%d" % port, "--grace-s", "2"])
    held = connect(port)
    held.sendall(config_file() + header(xml))
    wait_streams(server, 1)
    server.proc.send_signal(signal.SIGTERM)
    end = time.time() + 5
    while "draining" not in server.log_text() and time.time() < end:
        time.sleep(0.05)
    expect_refused(connect(port, source="127.0.0.5"), ["draining"], "new connection while draining")
    m = read_messages(held, seconds=20)
    held.close()
    errs = [t for t in texts(m) if t.startswith("ERR")]
    print("%-34s: %s" % ("ingesting when the grace ends", errs[0] if errs else m))
    assert errs and "grace period over" in errs[0] and m[-1][0] == CLOSE, m
    server.stop(expect_zero=False)


def check_cancel(w, pb):
    import grpc
    tokens = os.path.join(w, "tokens")
    admin = sc.run([sc.RECON5T, "token", "--role", "admin", "--name", "admin-1", "--append", tokens]).stdout.strip()
    port, mrd_port = sc.free_port(), sc.free_port()
    log = open(os.path.join(w, "recon5td-cancel.log"), "w")
    proc = subprocess.Popen([sc.RECON5TD, "--listen", "127.0.0.1:%d" % port, "--backend", "cpu", "--tokens-file",
                             tokens, "--mrd-listen", "127.0.0.1:%d" % mrd_port], stdout=log, stderr=subprocess.STDOUT)
    try:
        end = time.time() + 30
        while True:
            assert proc.poll() is None and time.time() < end, "recon5td did not start"
            try:
                s = connect(mrd_port)
                break
            except OSError:
                time.sleep(0.05)
        xml, _ = sc.read_scan(os.path.join(w, "phantom.h5"))
        s.sendall(config_file() + header(xml))
        s.settimeout(10)
        (mid,) = struct.unpack("<H", recv_exact(s, 2))
        (n,) = struct.unpack("<I", recv_exact(s, 4))
        accepted = recv_exact(s, n).rstrip(b"\0").decode()
        assert mid == TEXT and "accepted" in accepted, accepted
        job_id = accepted.split("job ")[1].split()[0]
        ch = grpc.insecure_channel("127.0.0.1:%d" % port)
        cancel = ch.unary_unary("/recon5t.v1.Recon/CancelJob", request_serializer=pb.CancelJobRequest.SerializeToString,
                                response_deserializer=pb.CancelJobReply.FromString)
        reply = cancel(pb.CancelJobRequest(job_id=job_id), timeout=20,
                       metadata=[("authorization", "Bearer " + admin)])
        m = read_messages(s)
        s.close()
        ch.close()
        errs = [t for t in texts(m) if t.startswith("ERR")]
        print("%-34s: state %s, %s" % ("CancelJob of an MRD job", reply.state, errs[0] if errs else m))
        assert reply.state == "ingesting", reply
        assert errs and "cancelled by admin" in errs[0] and m[-1][0] == CLOSE, m
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def check_vanish(w, pb, hpb):
    """A client that vanishes while its job runs: the next progress TEXT fails to go out and the job
    is cancelled (a CS job of 5000 iterations takes about 35 s here), not computed for no one."""
    port = sc.free_port()
    server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "127.0.0.1:%d" % port])
    try:
        scan = os.path.join(w, "cs.h5")
        sc.run([sc.RECON5T, "phantom", "--matrix", "128", "--coils", "8", "--sampling", "poisson", "--accel", "4",
                "--out", scan])
        log = open(os.path.join(w, "send-vanish.log"), "w")
        client = subprocess.Popen([sc.RECON5T, "send", scan, "--protocol", "mrd", "--server", "127.0.0.1:%d" % port,
                                   "--out", os.path.join(w, "vanish"), "--pipeline", "cs", "--param", "iters=5000",
                                   "--param", "lambda_l1=0.001"], stdout=log, stderr=subprocess.STDOUT)
        end = time.time() + 60
        while "stage cs" not in open(log.name).read() and time.time() < end and client.poll() is None:
            time.sleep(0.1)
        client.kill()
        client.wait()
        log.close()
        t0 = time.time()
        while "CANCELLED" not in server.log_text() and time.time() < t0 + 60:
            time.sleep(0.1)
        elapsed = time.time() - t0
        gone = [l for l in server.log_text().splitlines() if "is gone" in l]
        print("client killed while its job ran  : cancelled %.1f s later (%s)"
              % (elapsed, gone[0].split("INFO ")[-1] if gone else "no 'is gone' line"))
        assert gone and "CANCELLED" in server.log_text() and elapsed < 20, server.log_text()[-2000:]
        wait_streams(server, 0)
        out = send_mrd(w, port, os.path.join(w, "phantom.h5"), os.path.join(w, "after-vanish"))
        assert os.listdir(out)
    finally:
        server.stop()


def main():
    sc.require_binaries()
    with sc.tempdir() as w:
        t0 = time.time()
        pb, hpb = sc.load_protos(w)
        scan = sc.make_phantom(w, "phantom.h5", matrix="64", coils=2)
        xml, _ = sc.read_scan(scan)
        check_startup_refusals(w)
        port = sc.free_port()
        server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "127.0.0.1:%d" % port])
        try:
            check_integer_outputs(w, port, scan)
            check_queries(port)
        finally:
            server.stop()
        check_allow_lists(w, pb, hpb)
        check_admission(w, pb, hpb, xml)
        check_shared_peer_limit(w, pb, hpb, xml)
        check_idle(w, pb, hpb, xml, scan)
        check_drain(w, pb, hpb, xml)
        check_cancel(w, pb)
        check_vanish(w, pb, hpb)
        print("all cases: %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
