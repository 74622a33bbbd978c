#!/usr/bin/python3
"""The canary test (issue 15): patient data never leaves the DICOM output.

A 32x32, 4-coil phantom whose ISMRMRD header (subjectInformation, studyInformation) AND
PatientStudy carry unique canary strings (name, ID, birth date, accession number; the client job
id carries the accession number too, as a console might) goes through recon5td (console
priority, log_level debug, DICOM to the client and to a PACS spool: the PACS port is closed, so
the instances stay spooled). Jobs: an identified one, a de-identified one (ScanHeader parameter
deidentify = 1), one refused for bad input (a parameter whose value is a canary) and one
cancelled mid-stream. Checks:
  - the identified DICOM carries the canaries (the test would be blind otherwise);
  - none appears in the server's stdout/stderr, the error messages the client gets, or the
    names of any file or folder under the spool;
  - the de-identified DICOM carries none of them anywhere in its bytes, says Patient Identity
    Removed = YES with the (113100, DCM) method code, has new UIDs, and dciodvfy reports no error
    that the identified output does not have;
  - when recon5td accepts metrics_listen / audit_log (other helpers' keys), the metrics endpoint
    and the audit log carry none of them either (else that part is skipped with a reason)."""
import glob
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

NAME = "CANARY^Zebediah"
PID = "PID-7731-CANARY"
BIRTH = "19230417"
ACCESSION = "ACC5519CANARY"
STUDY_UID = "1.2.826.0.1.3680043.2.1143.77315519"
CANARIES = [NAME, "Zebediah", PID, BIRTH, "1923-04-17", ACCESSION, STUDY_UID]


def with_canaries(xml):
    """The phantom's header with subjectInformation and studyInformation holding the canaries."""
    subject = ("<subjectInformation><patientName>%s</patientName><patientID>%s</patientID>"
               "<patientBirthdate>1923-04-17</patientBirthdate><patientGender>O</patientGender>"
               "</subjectInformation><studyInformation><studyInstanceUID>%s</studyInstanceUID>"
               "<accessionNumber>%s</accessionNumber><referringPhysicianName>%s</referringPhysicianName>"
               "</studyInformation>" % (NAME, PID, STUDY_UID, ACCESSION, NAME))
    text = xml.decode() if isinstance(xml, bytes) else xml
    text = re.sub(r"<subjectInformation>.*?</subjectInformation>|<studyInformation>.*?</studyInformation>",
                  "", text, flags=re.S)
    m = re.search(r"<ismrmrdHeader[^>]*>(\s*<version>[^<]*</version>)?", text)
    assert m, "no ismrmrdHeader element"
    text = text[:m.end()] + subject + text[m.end():]
    return text.encode() if isinstance(xml, bytes) else text


def messages(pb, xml, records, params=None, **kw):
    for m in sc.scan_messages(pb, xml, records, batch=16, job_id=ACCESSION, params=params,
                              outputs=[pb.OUTPUT_MAGNITUDE], **kw):
        if m.WhichOneof("kind") == "header":
            p = m.header.patient
            p.patient_name, p.patient_id, p.patient_birth_date = NAME, PID, BIRTH
            p.accession_number, p.referring_physician, p.study_instance_uid = ACCESSION, NAME, STUDY_UID
            p.patient_sex = "O"
            m.header.format = pb.FORMAT_DICOM
        yield m


def leaks(text, where):
    return ["%s in %s" % (c, where) for c in CANARIES if c in text]


def byte_leaks(data, where):
    return ["%s in %s" % (c, where) for c in CANARIES if c.encode() in data]


def dicom_bytes(events):
    return [e.image.data for e in events if e.WhichOneof("kind") == "image"]


def dciodvfy_errors(work, name, data):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    r = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
    # the message without the file-specific values: "Error - <text>"
    return {re.sub(r"\s+", " ", l) for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")}


def cancel_mid_stream(server, pb, xml, records):
    stream = server.channel.stream_stream(sc.RECONSTRUCT, request_serializer=pb.ScanMessage.SerializeToString,
                                          response_deserializer=pb.ReconEvent.FromString)
    gate = threading.Event()

    def gen():
        yield from messages(pb, xml, records, end=False, stop_after=len(records) // 2)
        gate.wait(10)

    call = stream(gen(), timeout=60)
    first = next(call)
    assert first.WhichOneof("kind") == "accepted", first
    time.sleep(0.3)
    call.cancel()
    gate.set()
    details = ""
    try:
        for _ in call:
            pass
    except grpc.RpcError as e:
        details = e.details() or ""
    return details


def accepts_key(key):
    """1 when recon5td's --help lists the config key (another helper's part may be unmerged)."""
    r = subprocess.run([sc.RECON5TD, "--help"], capture_output=True, text=True)
    return ("--" + key.replace("_", "-")) in (r.stdout + r.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_part(work, scan, failures):
    """recon5t recon --dicom/--dicom-enhanced with and without --deidentify on the canary scan
    (its ISMRMRD header rewritten): files 0600 in 0700 folders, no canary when de-identified,
    no new dciodvfy error."""
    import h5py
    with h5py.File(scan, "r+") as f:
        xml = f["dataset/xml"][()]
        xml = xml[0] if not isinstance(xml, (bytes, str)) else xml
        del f["dataset/xml"]
        f.create_dataset("dataset/xml", data=with_canaries(xml))
    for flag in ([], ["--deidentify"]):
        tag = "anon" if flag else "id"
        out, enhanced = os.path.join(work, "cli-" + tag), os.path.join(work, "cli-mf-" + tag)
        sc.run([sc.RECON5T, "recon", scan, "--dicom", out, "--dicom-enhanced", enhanced, "--backend", "cpu",
                "--quiet"] + flag)
        for d in (out, enhanced):
            files = sorted(glob.glob(os.path.join(d, "*", "*.dcm")))
            assert files, d
            for path in files + [d, os.path.dirname(files[0])]:
                if os.stat(path).st_mode & 0o077:
                    failures.append("%s has mode %o" % (path, os.stat(path).st_mode & 0o777))
            with open(files[0], "rb") as f:
                data = f.read()
            found = byte_leaks(data, "recon5t recon %s %s" % (" ".join(flag), os.path.basename(d)))
            if flag:
                failures += found
                mine = dciodvfy_errors(work, "x.dcm", data)
                with open(sorted(glob.glob(os.path.join(d.replace("-anon", "-id"), "*", "*.dcm")))[0], "rb") as f:
                    theirs = dciodvfy_errors(work, "y.dcm", f.read())
                if mine - theirs:
                    failures.append("%s: new dciodvfy errors %s" % (d, sorted(mine - theirs)[:3]))
            elif not found:
                failures.append("identified %s lacks the canaries" % d)
    print("recon5t recon --deidentify: classic and enhanced checked")


def main():
    sc.require_binaries()
    if not os.access("/usr/bin/dciodvfy", os.X_OK):
        sc.skip("dciodvfy (dicom3tools) not installed")
    failures = []
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, matrix="32", coils=4)
        xml, records = sc.read_scan(scan)
        xml = with_canaries(xml)
        spool = os.path.join(work, "spool")
        extra = ["--workers", "1", "--log-level", "debug", "--pacs-host", "127.0.0.1",
                 "--pacs-port", str(free_port()), "--pacs-called-ae", "R5PHI", "--spool-dir", spool,
                 "--pacs-retry-s", "60", "--pacs-timeout-s", "2"]
        metrics_port = None
        audit = os.path.join(work, "audit.log")
        if accepts_key("metrics_listen"):
            metrics_port = free_port()
            extra += ["--metrics-listen", "127.0.0.1:%d" % metrics_port]
        else:
            print("SKIP part: recon5td has no metrics_listen key (metrics helper not merged)")
        if accepts_key("audit_log"):
            extra += ["--audit-log", audit]
        else:
            audit = None
            print("SKIP part: recon5td has no audit_log key (tls helper not merged)")
        server = sc.Server(work, pb, hpb, extra)
        errors_seen = []
        try:
            # 1. identified: the canaries are in the DICOM (else this test could not see a leak)
            events, code, details = server.reconstruct(messages(pb, xml, records), timeout=120)
            assert code.name == "OK", (code, details, server.log_text())
            identified = dicom_bytes(events)
            assert identified, sc.event_kinds(events)
            for c in (NAME, PID, BIRTH, ACCESSION, STUDY_UID):
                assert c.encode() in identified[0], "identified DICOM lacks %s" % c
            print("identified: %d instances carry the canaries" % len(identified))

            # 2. de-identified: none of them anywhere in the bytes
            events, code, details = server.reconstruct(messages(pb, xml, records, params={"deidentify": 1}),
                                                       timeout=120)
            assert code.name == "OK", (code, details, server.log_text())
            anonymous = dicom_bytes(events)
            assert len(anonymous) == len(identified), (len(anonymous), len(identified))
            for i, data in enumerate(anonymous):
                failures += byte_leaks(data, "de-identified instance %d" % i)
            import pydicom
            import io
            ds = pydicom.dcmread(io.BytesIO(anonymous[0]))
            if ds.get((0x0012, 0x0062)) is None or ds[0x0012, 0x0062].value != "YES":
                failures.append("Patient Identity Removed is not YES")
            codes = ds.get((0x0012, 0x0064))
            if codes is None or codes.value[0].CodeValue != "113100" or codes.value[0].CodingSchemeDesignator != "DCM":
                failures.append("no (113100, DCM) de-identification method code")
            if str(ds.PatientName) or ds.PatientID or ds.get("PatientBirthDate", "") or ds.AccessionNumber:
                failures.append("patient attributes not empty: %r %r" % (ds.PatientName, ds.PatientID))
            if ds.StudyInstanceUID == STUDY_UID or not ds.StudyInstanceUID.startswith("2.25."):
                failures.append("study UID not replaced: %s" % ds.StudyInstanceUID)
            again, code, _ = server.reconstruct(messages(pb, xml, records, params={"deidentify": 1}), timeout=120)
            same = pydicom.dcmread(io.BytesIO(dicom_bytes(again)[0]))
            if same.StudyInstanceUID != ds.StudyInstanceUID:
                failures.append("de-identified study UID differs between two jobs of one study")
            if same.SOPInstanceUID == ds.SOPInstanceUID:
                failures.append("SOP instance UID repeated")
            before = dciodvfy_errors(work, "identified.dcm", identified[0])
            after = dciodvfy_errors(work, "anonymous.dcm", anonymous[0])
            if after - before:
                failures.append("dciodvfy: new errors after de-identification: %s" % sorted(after - before)[:5])
            print("de-identified: %d instances, no canary, study UID %s, dciodvfy errors %d (identified %d)"
                  % (len(anonymous), ds.StudyInstanceUID, len(after), len(before)))

            # 3. bad input: a parameter value that is a canary; the message must not echo it
            events, code, details = server.reconstruct(messages(pb, xml, records, params={"lambda": PID}),
                                                       timeout=60)
            assert code.name == "INVALID_ARGUMENT", (code, details)
            errors_seen.append(details or "")
            events, code, details = server.reconstruct(messages(pb, xml, records, params={"reg": NAME}),
                                                       timeout=60)
            assert code.name == "INVALID_ARGUMENT", (code, details)
            errors_seen.append(details or "")
            # a header that is not XML, with the canary in it
            bad = b"<ismrmrdHeader><subjectInformation><patientName>" + NAME.encode() + b"</patient"
            events, code, details = server.reconstruct(messages(pb, bad, records), timeout=60)
            assert code.name == "INVALID_ARGUMENT", (code, details)
            errors_seen.append(details or "")
            print("bad input refused: %s" % " | ".join(errors_seen))

            # 4. cancelled mid-stream
            errors_seen.append(cancel_mid_stream(server, pb, xml, records))
            time.sleep(0.5)

            for i, text in enumerate(errors_seen):
                failures += leaks(text, "error message %d" % i)
            names = []
            for root, dirs, files in os.walk(spool):
                names += dirs + files
            assert any(n.endswith(".dcm") for n in names), "nothing spooled: %s" % names
            failures += leaks("\n".join(names), "spool file names")
            print("spool: %d names, e.g. %s" % (len(names), sorted(names)[-1]))
            if metrics_port:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=10) as r:
                    exposition = r.read().decode(errors="replace")
                assert "recon5t_jobs_total{" in exposition, "metrics endpoint has no jobs_total after the jobs"
                failures += leaks(exposition, "metrics")
                print("metrics: %d lines checked" % exposition.count("\n"))
            if audit:
                assert os.path.exists(audit), "audit log %s not written" % audit
                with open(audit, errors="replace") as f:
                    audit_text = f.read()
                assert audit_text.count("\n") >= 3, "audit log has %d lines for the jobs" % audit_text.count("\n")
                failures += leaks(audit_text, "audit log")
                print("audit log: %d lines checked" % audit_text.count("\n"))
        finally:
            server.stop(expect_zero=False)
        # 5. deidentify_research = 1: a research job is de-identified without asking, a console one not
        research = sc.Server(work, pb, hpb, ["--workers", "1", "--deidentify-research", "1"])
        try:
            events, code, details = research.reconstruct(messages(pb, xml, records, priority=pb.PRIORITY_RESEARCH),
                                                       timeout=120)
            assert code.name == "OK", (code, details)
            failures += byte_leaks(b"".join(dicom_bytes(events)), "research job under deidentify_research")
            events, code, details = research.reconstruct(messages(pb, xml, records), timeout=120)
            assert code.name == "OK", (code, details)
            if not byte_leaks(b"".join(dicom_bytes(events)), "console"):
                failures.append("deidentify_research de-identified a console job")
        finally:
            research.stop(expect_zero=False)
        failures += leaks(research.log_text(), "second server log")
        print("deidentify_research: research job de-identified, console job not")
        cli_part(work, scan, failures)
        log = server.log_text()
        assert "debug" in log.lower() or len(log) > 0, "empty server log"
        failures += leaks(log, "server log")
        print("server log: %d lines checked" % log.count("\n"))
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        return 1
    print("OK: no canary outside the identified DICOM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
