"""recon5td's spool on disk (issue 11 items 12 and 13), with the python grpcio client and a real
Orthanc on loopback (as in test_service_pacs.py):
  1. Private files. The configured spool_dir is world-writable (0777, like /var/tmp): the server
     still starts, keeps everything in spool_dir/recon5t (0700) and, the PACS being down, spools
     a job: every directory below is 0700, every file 0600, nothing is a symbolic link.
  2. Refused at start, with a message naming the path and what is wrong: spool_dir/recon5t owned
     by another user (uid 65534), with mode 0777, or its outbox a symbolic link to another
     directory (nothing is written through it); a second server on a folder one already uses.
  3. A push cut by SIGKILL: the PACS accepts the connection and never answers, so the job's 16
     files sit in the outbox; the server is killed. A second server (PACS now Orthanc) moves the
     orphan outbox into its spool at start and delivers it: Orthanc gets the 16 instances, with
     the SOP Instance UIDs of the files the kill left, each once (a UID set compare); the
     outbox is empty; an outbox of the layout before recon5t/ (spool_dir/outbox/j000006) is taken
     too. The second run's job ids differ from the first's, and its own job is delivered.
SKIP (77) when Orthanc is not installed, recon5td has no dcmtk, or (2, the owner case) when not
root."""
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402
import test_service_pacs as tp  # noqa: E402

N_INSTANCES = 16  # 32x32x8 phantom, magnitude + phase


def pacs_args(port, spool, timeout_s=5):
    return ["--workers", "1", "--pacs-host", "127.0.0.1", "--pacs-port", str(port), "--pacs-called-ae", "R5PACS",
            "--spool-dir", spool, "--pacs-retry-s", "0.5", "--pacs-timeout-s", str(timeout_s)]


def tree(root):
    """(path, lstat) of everything below root."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out.append((path, os.lstat(path)))
    return out


def check_private(work, pb, hpb, scan):
    base = os.path.join(work, "shared")
    os.makedirs(base)
    os.chmod(base, 0o777)
    server = sc.Server(work, pb, hpb, pacs_args(sc.free_port(), base))
    try:
        events, code, details = server.reconstruct(tp.scan_header_messages(pb, scan, "private-1", dicom=True),
                                                   timeout=60)
        assert code.name == "OK", (code, details, server.log_text())
        done = tp.completed(events)
        assert done.pacs_spooled == N_INSTANCES, done
    finally:
        server.stop()
    private = os.path.join(base, "recon5t")
    assert stat.S_IMODE(os.lstat(private).st_mode) == 0o700, oct(os.lstat(private).st_mode)
    entries = tree(private)
    n_files = 0
    for path, st in entries:
        assert not stat.S_ISLNK(st.st_mode), path
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            assert mode == 0o700, (path, oct(mode))
        else:
            n_files += 1
            assert mode == 0o600, (path, oct(mode))
    spooled = [p for p, _ in entries if p.endswith(".dcm")]
    assert len(spooled) == N_INSTANCES, spooled
    print("world-writable spool_dir: recon5t/ 0700, %d files all 0600 (%d .dcm spooled), %d directories 0700"
          % (n_files, len(spooled), len(entries) - n_files))
    return base


def start_fails(work, spool, needles):
    r = subprocess.run([sc.RECON5TD, "--listen", "127.0.0.1:%d" % sc.free_port(), "--backend", "cpu"]
                       + pacs_args(sc.free_port(), spool), capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, ("started", needles, r.stderr[-2000:])
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr[-2000:])
    return r.stderr.strip().splitlines()[-1]


def check_refused(work, pb, hpb, base):
    private = os.path.join(base, "recon5t")
    cases = 0
    if os.geteuid() == 0:
        os.chown(private, 65534, 65534)
        line = start_fails(work, base, [private, "owned by uid 65534"])
        os.chown(private, 0, 0)
        print("refused, other owner: %s" % line)
        cases += 1
    else:
        print("(owner case not run: needs root to chown)")
    os.chmod(private, 0o777)
    line = start_fails(work, base, [private, "mode 0777"])
    os.chmod(private, 0o700)
    print("refused, world-writable: %s" % line)
    outbox = os.path.join(private, "outbox")
    elsewhere = os.path.join(work, "elsewhere")
    os.makedirs(elsewhere, mode=0o700)
    shutil.rmtree(outbox)
    os.symlink(elsewhere, outbox)
    line = start_fails(work, base, [outbox, "symbolic link"])
    assert not os.listdir(elsewhere), os.listdir(elsewhere)
    os.unlink(outbox)
    print("refused, symlinked outbox: %s" % line)
    holder = sc.Server(work, pb, hpb, pacs_args(sc.free_port(), base))
    try:
        line = start_fails(work, base, [private, "in use by another recon5td (pid %d)" % holder.proc.pid])
    finally:
        holder.stop()
    print("refused, a second server on the folder: %s" % line)
    return cases + 3


class SilentPacs:
    """Accepts DICOM connections and never answers: an association request waits for its timeout."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self):
        for c in self.connections:
            c.close()
        self.sock.close()


def job_id(events):
    for e in events:
        if e.WhichOneof("kind") == "accepted":
            return e.accepted.job_id
    return None


def outbox_files(spool):
    outbox = os.path.join(spool, "recon5t", "outbox")
    found = []
    for job in os.listdir(outbox) if os.path.isdir(outbox) else []:
        found += [os.path.join(outbox, job, f) for f in os.listdir(os.path.join(outbox, job))]
    return found


def check_orphan_recovery(work, pb, hpb, scan, orthanc):
    spool = os.path.join(work, "spool-kill")
    silent = SilentPacs()
    first = sc.Server(work, pb, hpb, pacs_args(silent.port, spool, timeout_s=120))
    result = {}

    def push():
        result["events"], result["code"], _ = first.reconstruct(
            tp.scan_header_messages(pb, scan, "killed-1", dicom=True), timeout=120)
    client = threading.Thread(target=push)
    client.start()
    end = time.time() + 60
    while time.time() < end and not (silent.connections and
                                     len([f for f in outbox_files(spool) if f.endswith(".dcm")]) == N_INSTANCES):
        time.sleep(0.05)
    files = outbox_files(spool)
    assert silent.connections and len(files) == N_INSTANCES, (len(silent.connections), files, first.log_text())
    import pydicom
    killed_uids = sorted(str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
                         for f in files if f.endswith(".dcm"))
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    first.log.close()
    client.join(60)
    first_ids = {job_id(result.get("events", []))}
    assert None not in first_ids, result
    silent.close()
    # the layout before recon5t/: an outbox directly in spool_dir, named as the old ids were
    legacy = os.path.join(spool, "outbox", "j000006")
    os.makedirs(legacy, mode=0o700)
    os.chmod(os.path.join(spool, "outbox"), 0o700)
    for f in files:
        shutil.copy(f, os.path.join(legacy, os.path.basename(f)))
    print("SIGKILL during a push: %d files left in %s (job %s)" % (len(files), os.path.dirname(files[0]),
                                                                   sorted(first_ids)[0]))

    before_ids = set(orthanc.get("/instances"))
    before = len(before_ids)
    arrived = {}

    def watch():  # the client's wait for health is slow (gRPC reconnect backoff): time it apart
        while time.time() - t0 < 30 and len(orthanc.get("/instances")) < before + N_INSTANCES:
            time.sleep(0.02)
        arrived["s"] = time.time() - t0
    t0 = time.time()
    watcher = threading.Thread(target=watch)
    watcher.start()
    second = sc.Server(work, pb, hpb, pacs_args(orthanc.dicom, spool))
    try:
        started = time.time() - t0
        watcher.join()
        while time.time() - t0 < 30 and tp.spool_files(spool):
            time.sleep(0.1)
        recovered = arrived["s"]
        assert len(orthanc.get("/instances")) == before + N_INSTANCES, (len(orthanc.get("/instances")),
                                                                        second.log_text())
        # the same SOP Instance UIDs as the files the kill left (a retry re-sends them, it does
        # not re-make them), each once
        new_uids = sorted(orthanc.get("/instances/%s" % i)["MainDicomTags"]["SOPInstanceUID"]
                          for i in set(orthanc.get("/instances")) - before_ids)
        assert new_uids == killed_uids and len(set(killed_uids)) == N_INSTANCES, (new_uids, killed_uids)
        assert not tp.spool_files(spool), tp.spool_files(spool)
        assert not outbox_files(spool), outbox_files(spool)
        assert not os.path.exists(legacy), os.listdir(legacy)
        moved = [line for line in second.log_text().splitlines() if "moved into the spool" in line]
        print("restart: orphan outbox (and the old-layout one) in Orthanc %.2f s after the start "
              "(health answered after %.2f s); log: %s" % (recovered, started, moved[0].split(" WARN ")[-1]
                                                           if moved else "-"))
        second_ids = set()
        for i in range(2):
            events, code, details = second.reconstruct(
                tp.scan_header_messages(pb, scan, "after-%d" % i, dicom=True), timeout=60)
            assert code.name == "OK", (code, details, second.log_text())
            done = tp.completed(events)
            assert done.pacs_stored == N_INSTANCES, done
            second_ids.add(job_id(events))
        assert not second_ids & first_ids, (first_ids, second_ids)
        assert len(orthanc.get("/instances")) == before + 3 * N_INSTANCES
        print("job ids: first run %s, second run %s (distinct); both later jobs delivered"
              % (sorted(first_ids), sorted(second_ids)))
    finally:
        second.stop()


def main():
    sc.require_binaries()
    if not os.access(tp.ORTHANC, os.X_OK):
        sc.skip("%s not installed" % tp.ORTHANC)
    ldd = subprocess.run(["ldd", sc.RECON5TD], capture_output=True, text=True).stdout
    if "dcmnet" not in ldd:
        sc.skip("recon5td built without dcmtk (no C-STORE)")
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, matrix="32,32,8", coils=4, kind="shepp-logan-3d")
        base = check_private(work, pb, hpb, scan)
        n = check_refused(work, pb, hpb, base)
        print("%d bad spool folders refused at start" % n)
        orthanc = tp.Orthanc(work)
        if not orthanc.start():
            orthanc.stop()
            sc.skip("Orthanc did not start on loopback (see its log)")
        try:
            check_orphan_recovery(work, pb, hpb, scan, orthanc)
        finally:
            orthanc.stop()
    print("PASS")


if __name__ == "__main__":
    main()
