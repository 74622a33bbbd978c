"""recon5td pushes every job's DICOM series to its configured PACS (issue 4 §4), against a real
Orthanc started on loopback free ports (JSON config in a temporary folder):
  1. a 3D phantom (8 partitions, magnitude + phase) sent with the python grpcio client: Completed
     says 16 stored, 0 spooled; Orthanc's REST lists 16 instances in 2 series with the request's
     PatientID, Modality MR, and the SeriesInstanceUIDs of the DICOM Image events (same encoding).
  2. skip_pacs (recon5t send --no-pacs): nothing more reaches Orthanc, Completed has no PACS line.
  3. Orthanc stopped: the job still completes OK, Completed says 16 spooled, the spool holds 16
     .dcm files and Capabilities.pacs_spooled says 16.
  4. Orthanc started again: within the backoff window (first retry after 5 s) the spooler
     delivers them; Orthanc then has 32 instances (the same 2 series: the series UIDs come from the
     phantom's ISMRMRD header, the instance UIDs are new) and the spool is empty.
SKIP (77) when Orthanc is not installed or recon5td was built without dcmtk."""
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

ORTHANC = "/usr/sbin/Orthanc"
PATIENT_ID = "R5-PACS-0042"


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Orthanc:
    def __init__(self, work):
        self.work = work
        self.http, self.dicom = sc.free_port(), sc.free_port()
        self.config = os.path.join(work, "orthanc.json")
        db = os.path.join(work, "orthanc-db")
        with open(self.config, "w") as f:
            json.dump({"Name": "r5svc", "StorageDirectory": db, "IndexDirectory": db,
                       "HttpPort": self.http, "DicomPort": self.dicom, "DicomAet": "R5PACS",
                       "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                       "DicomCheckCalledAet": True, "Plugins": []}, f)
        self.proc = None

    def start(self):
        log = open(os.path.join(self.work, "orthanc.log"), "a")
        self.proc = subprocess.Popen([ORTHANC, self.config], stdout=log, stderr=subprocess.STDOUT)
        end = time.time() + 30
        while time.time() < end:
            if self.proc.poll() is not None:
                return False
            if port_open(self.dicom) and port_open(self.http):
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http, path), timeout=10) as r:
            return json.loads(r.read().decode())


def scan_header_messages(pb, scan, job_id, skip_pacs=False, dicom=False):
    xml, records = sc.read_scan(scan)
    for m in sc.scan_messages(pb, xml, records, batch=16, job_id=job_id,
                              outputs=[pb.OUTPUT_MAGNITUDE, pb.OUTPUT_PHASE]):
        if m.WhichOneof("kind") == "header":
            m.header.patient.patient_id = PATIENT_ID
            m.header.patient.patient_name = "Pacs^Test"
            m.header.skip_pacs = skip_pacs
            if dicom:
                m.header.format = pb.FORMAT_DICOM
        yield m


def completed(events):
    assert events and events[-1].WhichOneof("kind") == "completed", sc.event_kinds(events)
    return events[-1].completed


def spool_files(spool):
    return sorted(glob.glob(os.path.join(spool, "recon5t", "pacs", "*", "*.dcm")))


def check_bad_config(work):
    """A PACS without an AE title, a bad AE title and an unwritable spool stop the start with a
    message naming the key."""
    cases = [(["--pacs-host", "127.0.0.1"], "pacs_called_ae"),
             (["--pacs-host", "127.0.0.1", "--pacs-called-ae", "A\\B"], "AE title"),
             (["--pacs-host", "127.0.0.1", "--pacs-called-ae", "X", "--spool-dir", "/proc/r5-no-such/spool"],
              "spool_dir")]
    for extra, needle in cases:
        r = subprocess.run([sc.RECON5TD, "--listen", "127.0.0.1:%d" % sc.free_port()] + extra,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and needle in r.stderr, (extra, r.returncode, r.stderr)
    print("bad PACS configuration refused (%d cases)" % len(cases))


def main():
    sc.require_binaries()
    if not os.access(ORTHANC, os.X_OK):
        sc.skip("%s not installed" % ORTHANC)
    ldd = subprocess.run(["ldd", sc.RECON5TD], capture_output=True, text=True).stdout
    if "dcmnet" not in ldd:
        sc.skip("recon5td built without dcmtk (no C-STORE)")
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        check_bad_config(work)
        orthanc = Orthanc(work)
        if not orthanc.start():
            orthanc.stop()
            sc.skip("Orthanc did not start on loopback (see its log)")
        spool = os.path.join(work, "spool")
        scan = sc.make_phantom(work, matrix="32,32,8", coils=4, kind="shepp-logan-3d")
        server = None
        try:
            server = sc.Server(work, pb, hpb, ["--workers", "1", "--pacs-host", "127.0.0.1",
                                               "--pacs-port", str(orthanc.dicom), "--pacs-called-ae", "R5PACS",
                                               "--spool-dir", spool, "--pacs-retry-s", "0.5",
                                               "--pacs-timeout-s", "5"])
            caps = server.capabilities()
            assert list(caps.pacs_destinations) == ["R5PACS@127.0.0.1:%d" % orthanc.dicom], caps
            outbox = os.path.join(spool, "recon5t", "outbox")
            assert os.path.isdir(outbox), os.listdir(spool)

            # 1. delivered: DICOM events and the PACS copy carry the same series UIDs
            events, code, details = server.reconstruct(scan_header_messages(pb, scan, "pacs-1", dicom=True),
                                                       timeout=60)
            assert code.name == "OK", (code, details, server.log_text())
            done = completed(events)
            n = done.n_images
            assert n == 16 and done.pacs_stored == n and done.pacs_spooled == 0 and done.pacs_failed == 0, done
            assert "16 stored" in done.pacs_message, done.pacs_message
            instances, series = orthanc.get("/instances"), orthanc.get("/series")
            assert len(instances) == n and len(series) == 2, (len(instances), len(series))
            import pydicom
            from io import BytesIO
            event_series = {pydicom.dcmread(BytesIO(e.image.data)).SeriesInstanceUID
                            for e in events if e.WhichOneof("kind") == "image"}
            pacs_series = set()
            for s in series:
                info = orthanc.get("/series/%s" % s)
                pacs_series.add(info["MainDicomTags"]["SeriesInstanceUID"])
                assert len(info["Instances"]) == 8, info
            assert pacs_series == event_series, (pacs_series, event_series)
            tags = orthanc.get("/instances/%s/simplified-tags" % instances[0])
            assert tags["PatientID"] == PATIENT_ID and tags["Modality"] == "MR", (tags["PatientID"], tags["Modality"])
            assert not os.listdir(outbox), "outbox not cleaned"
            assert PATIENT_ID not in server.log_text(), "patient id in the server log"
            print("PACS up: %d instances stored in 2 series (PatientID, Modality MR, series UIDs as in the events)" % n)

            # 2. skip_pacs through recon5t send --no-pacs
            out = os.path.join(work, "nopacs")
            sc.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out, "--quiet", "--no-pacs"])
            with open(os.path.join(out, "completed.txt")) as f:
                text = f.read()
            assert "pacs" not in text and len(orthanc.get("/instances")) == n, text
            print("--no-pacs: nothing pushed")

            # 3. PACS down: job completes, instances wait in the spool
            orthanc.stop()
            t0 = time.time()
            events, code, details = server.reconstruct(scan_header_messages(pb, scan, "pacs-2"), timeout=60)
            assert code.name == "OK", (code, details, server.log_text())
            done = completed(events)
            assert done.pacs_stored == 0 and done.pacs_spooled == n and done.pacs_failed == 0, done
            files = spool_files(spool)
            assert len(files) == n, files
            assert server.capabilities().pacs_spooled == n
            print("PACS down: job OK in %.2f s, %d spooled (%s)" % (time.time() - t0, len(files), done.pacs_message))

            # 4. PACS back: the spooler delivers within the backoff window
            assert orthanc.start(), "Orthanc did not restart"
            t1 = time.time()
            while time.time() - t1 < 30 and (spool_files(spool) or len(orthanc.get("/instances")) < 2 * n):
                time.sleep(0.25)
            arrived = time.time() - t1
            assert not spool_files(spool), "still spooled after %.1f s: %d" % (arrived, len(spool_files(spool)))
            counts = (len(orthanc.get("/instances")), len(orthanc.get("/series")))
            # same phantom header: the series UIDs come from it, so the new instances join 2 series
            assert counts == (2 * n, 2), counts
            assert server.capabilities().pacs_spooled == 0
            print("PACS back: %d spooled instances delivered %.1f s after Orthanc restarted "
                  "(%.1f s after the job; first retry due 5 s after spooling)" % (n, arrived, time.time() - t0))
            server.stop()
            server = None
        finally:
            if server:
                server.stop(expect_zero=False)
            orthanc.stop()
    print("PASS")


if __name__ == "__main__":
    main()
