"""recon5td with a full disk under its spool (issue 11 item 14). The spool_dir is a small tmpfs
(a real file system that answers ENOSPC), filled with a filler file so that exactly two of the
job's DICOM files still fit; a real Orthanc on loopback is the PACS (as in test_service_pacs.py).
  0. Room enough: a job of 16 instances is delivered (the tmpfs works as a spool).
  1. PACS up, FORMAT_DICOM, room for 2 files: the client still gets all 16 Image events,
     Completed and status OK; Completed says 2 stored, 14 failed and why ("No space left on
     device"); Orthanc has the 2; no partial, temporary or empty file is left.
  2. PACS down, float32 images, room for 3 files: the client gets its images and OK; Completed
     says 3 spooled, 13 failed, and why; the 3 wait in the spool (moved there: no extra space
     needed), complete; nothing partial anywhere.
  3. Space back, PACS back: the spooler delivers the 3; the spool is empty.
SKIP (77) when Orthanc is missing, recon5td has no dcmtk, or a tmpfs cannot be mounted (needs
root and permission to mount)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402
import test_service_pacs as tp  # noqa: E402

N_INSTANCES = 16
PAGE = 4096


def mount_tmpfs(path, size):
    if os.geteuid() != 0:
        return "not root"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % size, "tmpfs", path],
                       capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or "mount failed")


def fill(mount, files, file_bytes):
    """Leaves room for `files` files of file_bytes each (tmpfs allocates whole pages)."""
    filler = os.path.join(mount, "filler")
    if os.path.exists(filler):
        os.unlink(filler)
    st = os.statvfs(mount)
    free = st.f_bavail * st.f_frsize
    pages = (file_bytes + PAGE - 1) // PAGE
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - files * pages * PAGE))
    room = os.statvfs(mount).f_bavail * st.f_frsize
    assert room == files * pages * PAGE, (room, files, pages)


def leftovers(mount, again=True):
    """Files of the private folder that are partial: .tmp names or empty (the lock excepted). A
    retry pass of the spooler may hold a .meta.tmp for a moment: only what stays counts."""
    bad = []
    for dirpath, _, names in os.walk(os.path.join(mount, "recon5t")):
        for name in names:
            path = os.path.join(dirpath, name)
            if name == "lock" and dirpath == os.path.join(mount, "recon5t"):
                continue
            if name.endswith(".tmp") or os.path.getsize(path) == 0:
                bad.append(path)
    if bad and again:
        time.sleep(0.3)
        return [p for p in leftovers(mount, again=False) if p in bad]
    return bad


def images(events):
    return [e for e in events if e.WhichOneof("kind") == "image"]


def run_job(server, pb, scan, name, dicom):
    events, code, details = server.reconstruct(tp.scan_header_messages(pb, scan, name, dicom=dicom), timeout=60)
    assert code.name == "OK", (name, code, details, server.log_text()[-3000:])
    return events, tp.completed(events)


def main():
    sc.require_binaries()
    if not os.access(tp.ORTHANC, os.X_OK):
        sc.skip("%s not installed" % tp.ORTHANC)
    if "dcmnet" not in subprocess.run(["ldd", sc.RECON5TD], capture_output=True, text=True).stdout:
        sc.skip("recon5td built without dcmtk (no C-STORE)")
    with sc.tempdir() as work:
        mount = os.path.join(work, "spool")
        os.makedirs(mount)
        why = mount_tmpfs(mount, 2 * 1024 * 1024)
        if why:
            sc.skip("cannot mount a tmpfs for the spool (%s)" % why)
        orthanc = tp.Orthanc(work)
        server = None
        try:
            pb, hpb = sc.load_protos(work)
            scan = sc.make_phantom(work, matrix="32,32,8", coils=4, kind="shepp-logan-3d")
            if not orthanc.start():
                sc.skip("Orthanc did not start on loopback (see its log)")
            server = sc.Server(work, pb, hpb, ["--workers", "1", "--pacs-host", "127.0.0.1",
                                               "--pacs-port", str(orthanc.dicom), "--pacs-called-ae", "R5PACS",
                                               "--spool-dir", mount, "--pacs-retry-s", "0.5",
                                               "--pacs-timeout-s", "5"])
            # 0. room enough
            events, done = run_job(server, pb, scan, "room", dicom=True)
            assert done.pacs_stored == N_INSTANCES and done.pacs_failed == 0, done
            file_bytes = max(len(e.image.data) for e in images(events))
            print("room: %d stored; DICOM files of up to %d bytes" % (done.pacs_stored, file_bytes))

            # 1. PACS up, disk full after two files
            fill(mount, 2, file_bytes)
            events, done = run_job(server, pb, scan, "full-up", dicom=True)
            assert len(images(events)) == N_INSTANCES and done.n_images == N_INSTANCES, (len(images(events)), done)
            assert done.pacs_stored == 2 and done.pacs_spooled == 0 and done.pacs_failed == N_INSTANCES - 2, done
            assert "no space left on device" in done.pacs_message.lower(), done.pacs_message
            assert len(orthanc.get("/instances")) == N_INSTANCES + 2
            assert not leftovers(mount), leftovers(mount)
            assert not os.listdir(os.path.join(mount, "recon5t", "outbox")), "outbox not cleaned"
            print("disk full, PACS up: %d images and OK to the client; %s" % (len(images(events)),
                                                                            done.pacs_message))

            # 2. PACS down, disk full after three files (float32 images: the PACS copy comes after)
            orthanc.stop()
            fill(mount, 3, file_bytes)
            events, done = run_job(server, pb, scan, "full-down", dicom=False)
            assert len(images(events)) == 2 and done.n_images == 2, (len(images(events)), done)
            assert done.pacs_stored == 0 and done.pacs_spooled == 3 and done.pacs_failed == N_INSTANCES - 3, done
            assert "no space left on device" in done.pacs_message.lower(), done.pacs_message
            spooled = tp.spool_files(mount)
            assert len(spooled) == 3 and all(os.path.getsize(p) > 0 for p in spooled), spooled
            assert not leftovers(mount), leftovers(mount)
            print("disk full, PACS down: images and OK to the client; %s" % done.pacs_message)

            # 3. space and PACS back: the three are delivered
            os.unlink(os.path.join(mount, "filler"))
            assert orthanc.start(), "Orthanc did not restart"
            t0 = time.time()
            while time.time() - t0 < 30 and tp.spool_files(mount):
                time.sleep(0.1)
            assert not tp.spool_files(mount), tp.spool_files(mount)
            assert len(orthanc.get("/instances")) == N_INSTANCES + 5, len(orthanc.get("/instances"))
            print("space and PACS back: 3 spooled instances delivered in %.2f s" % (time.time() - t0))
            server.stop()
            server = None
        finally:
            if server:
                server.stop(expect_zero=False)
            orthanc.stop()
            subprocess.run(["umount", "-l", mount], capture_output=True)
    print("PASS")


if __name__ == "__main__":
    main()
