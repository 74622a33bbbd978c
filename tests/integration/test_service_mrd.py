"""recon5td's MRD v1 (FIRE) listener against the unmodified reference peers in
../shared/peers/mrd (python-ismrmrd-server's client and server):
  1. mrd-client sends an ismrmrd_generate_cartesian_shepp_logan scan and a recon5t phantom to
     --mrd-listen: the images equal offline `recon5t recon` of the same file (float32,
     relative error <= 1e-5);
  2. the reference server (config simplefft) gives the same image within a scaling;
  3. bad input over MRD (unknown id, truncated message, lengths over limits, a header that is
     not ISMRMRD XML, a client vanishing mid-stream) gets TEXT ERR + CLOSE or a closed socket,
     the next connection is served, and RSS comes back near its baseline.
SKIP (77) when the peers or their Python packages are absent."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import svc_common as sc  # noqa: E402
import numpy as np  # noqa: E402

SHARED = os.environ.get("R5_SHARED", os.path.join(sc.R5_SOURCE, "..", "shared"))
PEERS = os.path.join(SHARED, "peers", "mrd")
CLIENT = os.path.join(PEERS, "mrd-client")


def require_peers():
    if not os.access(CLIENT, os.X_OK):
        sc.skip("no MRD reference peers at %s" % PEERS)
    if not shutil.which("ismrmrd_generate_cartesian_shepp_logan"):
        sc.skip("ismrmrd-tools not installed")
    try:
        import xsdata  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError:
        sc.skip("python3-xsdata / python3-matplotlib not installed (the reference peers need them)")


def mrd_client(workdir, port, scan, config, group):
    """Runs the reference client from workdir (no <config>.json there); returns the images."""
    out = os.path.join(workdir, "mrd-out.h5")
    log = subprocess.run(["timeout", "120", CLIENT, "-a", "127.0.0.1", "-p", str(port), "-c", config,
                          "-o", out, "-G", group, scan], cwd=workdir, capture_output=True, text=True)
    text = log.stdout + log.stderr
    if not os.path.exists(out):
        return [], text
    return [a for name, a in sc.read_images(out) if name.startswith(group + "/")], text


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def check_offline(w, port, scan, group):
    images, log = mrd_client(w, port, scan, "default", group)
    assert images, "no images back from the MRD listener:\n" + log
    offline = sc.read_images(sc.offline_recon(w, scan, name=group + "-offline.h5"))
    assert offline, "no offline images"
    got = np.squeeze(images[0]).astype(np.float32)
    want = np.squeeze(offline[0][1])
    if want.dtype.names:  # complex images offline: the listener sends their magnitude
        want = np.abs(want["real"] + 1j * want["imag"])
    want = want.astype(np.float32)
    assert got.shape == want.shape, "MRD image %s, offline %s" % (got.shape, want.shape)
    e = rel(got, want)
    print("%s: MRD vs offline recon5t recon: relative error %.2e (shape %s)" % (group, e, got.shape))
    assert e <= 1e-5, "relative error %.3e > 1e-5" % e
    return got


def mrd_text(s, text):
    b = text.encode() + b"\0"
    s.sendall(struct.pack("<HI", 5, len(b)) + b)


def read_reply(s, seconds=30):
    """Bytes the server sends until it closes the socket (or CLOSE 4 at the end)."""
    s.settimeout(seconds)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.endswith(b"\x04\x00"):
                break
    except socket.timeout:
        raise AssertionError("no reply and no close within %d s (got %r)" % (seconds, data[:200]))
    return data


def bad(port, payload, name, close_early=False):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(payload)
    if close_early:
        s.close()
        print("bad input %-22s: client vanished" % name)
        return
    s.shutdown(socket.SHUT_WR) if name == "truncated" else None
    reply = read_reply(s)
    s.close()
    ok = (b"ERR" in reply and reply.endswith(b"\x04\x00")) or reply == b""
    print("bad input %-22s: %s" % (name, reply[6:120].split(b"\0")[0].decode(errors="replace") or "socket closed"))
    assert ok, "%s: reply %r" % (name, reply[:200])
    assert reply == b"" or b"ERR" in reply, name


def main():
    sc.require_binaries()
    require_peers()
    with sc.tempdir() as w:
        pb, hpb = sc.load_protos(w)
        mrd_port = sc.free_port()
        server = sc.Server(w, pb, hpb, extra=["--mrd-listen", "127.0.0.1:%d" % mrd_port])
        try:
            t0 = time.time()
            shepp = os.path.join(w, "shepp.h5")
            sc.run(["ismrmrd_generate_cartesian_shepp_logan", "-o", shepp])
            check_offline(w, mrd_port, shepp, "shepp")
            phantom = sc.make_phantom(w, "phantom.h5", matrix="96", coils=4)
            check_offline(w, mrd_port, phantom, "phantom")
            print("reference client cases: %.1f s" % (time.time() - t0))
            base = server.rss_kb()

            header = b"<?xml version=\"1.0\"?><notismrmrd/>\0"
            cases = [
                ("unknown id", struct.pack("<H", 777)),
                ("truncated", struct.pack("<HI", 3, 1000) + b"<ismrmrd"),
                ("header over limit", struct.pack("<HI", 3, 0xFFFFFFF0)),
                ("text over limit", struct.pack("<HI", 2, 0x7FFFFFFF)),
                ("not ISMRMRD XML", struct.pack("<HI", 3, len(header)) + header),
                ("empty header", struct.pack("<HI", 3, 0)),
            ]
            for name, payload in cases:
                bad(mrd_port, payload, name)
            acq = bytearray(340)
            # number_of_samples, available_channels, active_channels (ISMRMRD packs to 2 bytes)
            struct.pack_into("<HHH", acq, 34, 65535, 65535, 65535)
            bad(mrd_port, struct.pack("<H", 1008) + bytes(acq), "acquisition over limit")
            bad(mrd_port, struct.pack("<H", 1) + b"default".ljust(1024, b"\0") + struct.pack("<HI", 3, 50000)
                + b"<x", "vanishes mid-stream", close_early=True)
            images, log = mrd_client(w, mrd_port, shepp, "default", "after")
            assert images, "the listener does not serve the next connection:\n" + log
            end = time.time() + 30
            while server.rss_kb() > base + 50 * 1024 and time.time() < end:
                time.sleep(0.5)
            print("RSS: %d KiB after the good runs, %d KiB after the bad input" % (base, server.rss_kb()))
            assert server.rss_kb() <= base + 50 * 1024, "RSS grew by more than 50 MiB"

            ref_port = sc.free_port()
            ref = subprocess.Popen(["/usr/bin/python3", os.path.join(PEERS, "run_server.py"), "-H", "127.0.0.1",
                                    "-p", str(ref_port)], cwd=w, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            try:
                end = time.time() + 30
                while time.time() < end:
                    try:
                        socket.create_connection(("127.0.0.1", ref_port)).close()
                        break
                    except OSError:
                        time.sleep(0.2)
                theirs, log = mrd_client(w, ref_port, shepp, "simplefft", "ref")
                assert theirs, "no images from the reference server:\n" + log
                # the C client against the reference server
                out = os.path.join(w, "send-ref")
                r = subprocess.run([sc.RECON5T, "send", shepp, "--protocol", "mrd", "--server",
                                    "127.0.0.1:%d" % ref_port, "--pipeline", "simplefft", "--out", out, "--quiet"],
                                   capture_output=True, text=True, timeout=120)
                files = sorted(f for f in os.listdir(out) if not f.endswith(".txt")) if os.path.isdir(out) else []
                print("recon5t send --protocol mrd vs the reference server: rc %d, %s" % (r.returncode, files))
                assert r.returncode == 0 and files, r.stderr
            finally:
                ref.terminate()
                ref.wait()
            # the C client against recon5td: the same image as offline; a vendor key gets WRN, a bad value ERR
            out = os.path.join(w, "send-ours")
            sc.run([sc.RECON5T, "send", shepp, "--protocol", "mrd", "--server", "127.0.0.1:%d" % mrd_port,
                    "--out", out, "--quiet"])
            got = np.fromfile(os.path.join(out, "magnitude_s1_0000.f32"), dtype="<f4")
            want = np.squeeze(sc.read_images(os.path.join(w, "shepp-offline.h5"))[0][1])
            want = np.abs(want["real"] + 1j * want["imag"]).ravel()
            print("recon5t send --protocol mrd vs offline: relative error %.2e" % rel(got, want))
            assert rel(got, want) <= 1e-5
            r = subprocess.run([sc.RECON5T, "send", shepp, "--protocol", "mrd", "--server", "127.0.0.1:%d" % mrd_port,
                                "--out", out, "--param", "sendOriginal=1", "--param", "iters=abc"],
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 1 and "WRN parameter sendOriginal" in r.stderr and "ERR" in r.stderr, r.stderr
            ours, _ = mrd_client(w, mrd_port, shepp, "default", "ours")
            a = np.squeeze(ours[0]).astype(np.float64)
            b = np.squeeze(theirs[0]).astype(np.float64)
            assert a.shape == b.shape, "recon5t %s, reference %s" % (a.shape, b.shape)
            scale = float(np.vdot(a, b) / np.vdot(a, a))
            e = rel(scale * a, b)
            print("recon5t vs reference server (simplefft): relative error %.3e after scaling by %.4g" % (e, scale))
            assert e < 0.05, "recon5t and the reference server differ by %.3e" % e
        finally:
            server.stop()


if __name__ == "__main__":
    main()
