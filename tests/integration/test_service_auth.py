#!/usr/bin/env python3
"""Transport security and identity (issue 15): TLS, mutual TLS, bearer tokens, roles, the
certificate rotated on disk, plaintext refused off loopback, the audit log.

Certificates come from scripts/make-certs.sh (openssl); tokens from `recon5t token`-style lines
written here with hashlib (the same salted SHA-256 the server checks)."""
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(__file__))
import svc_common as sc  # noqa: E402

CAPS = "/recon5t.v1.Recon/Capabilities"
PATIENT = "Canary^Auth"
UID = "1.2.826.0.1.3680043.8.498.4242"


def token_line(role, name, token):
    salt = os.urandom(16)
    return "%s %s %s %s\n" % (role, name, salt.hex(), hashlib.sha256(salt + token.encode()).hexdigest())


class Daemon:
    """recon5td with a plaintext health port to wait on (the main port may need credentials)."""

    def __init__(self, workdir, pb, hpb, extra, host="127.0.0.1"):
        self.port = sc.free_port()
        self.health_port = sc.free_port()
        self.address = "%s:%d" % (host, self.port)
        self.log_path = os.path.join(workdir, "recon5td-%d.log" % self.port)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sc.RECON5TD, "--listen", self.address, "--health-listen",
                                      "127.0.0.1:%d" % self.health_port, "--backend", "cpu"] + list(extra),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.pb, self.hpb = pb, hpb
        hc = grpc.insecure_channel("127.0.0.1:%d" % self.health_port)
        check = hc.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=hpb.HealthCheckRequest.SerializeToString,
                               response_deserializer=hpb.HealthCheckResponse.FromString)
        end = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("recon5td exited %d:\n%s" % (self.proc.returncode, self.text()))
            try:
                if check(hpb.HealthCheckRequest(), timeout=0.5).status == hpb.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            if time.time() > end:
                raise AssertionError("recon5td not healthy:\n" + self.text())
            time.sleep(0.1)
        hc.close()

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def caps(pb, channel, metadata=None):
    call = channel.unary_unary(CAPS, request_serializer=pb.CapabilitiesRequest.SerializeToString,
                               response_deserializer=pb.CapabilitiesReply.FromString)
    try:
        call(pb.CapabilitiesRequest(), timeout=20, metadata=metadata)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def recon(pb, channel, messages, metadata=None):
    stream = channel.stream_stream(sc.RECONSTRUCT, request_serializer=pb.ScanMessage.SerializeToString,
                                   response_deserializer=pb.ReconEvent.FromString)
    events = []
    try:
        for ev in stream(iter(messages), timeout=120, metadata=metadata):
            events.append(ev)
        return events, grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return events, e.code(), e.details()


def n_images(events):
    return sum(1 for e in events if e.WhichOneof("kind") == "image")


def expect(got, want, what):
    if got[0] != want:
        raise AssertionError("%s: expected %s, got %s (%s)" % (what, want, got[0], got[1]))


def main():
    sc.require_binaries()
    if not shutil.which("openssl"):
        sc.skip("openssl not installed")
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        certs = os.path.join(work, "certs")
        sc.run(["sh", os.path.join(sc.R5_SOURCE, "scripts", "make-certs.sh"), certs])
        rd = lambda n: open(os.path.join(certs, n), "rb").read()  # noqa: E731
        tokens = {r: os.urandom(32).hex() for r in ("console", "research", "monitor", "admin")}
        tokens_file = os.path.join(work, "tokens")
        with open(tokens_file, "w") as f:
            f.write("# role name salt sha256(salt||token)\n")
            for role, tok in tokens.items():
                if role != "console":
                    f.write(token_line(role, role + "-1", tok))
        # the console's token from `recon5t token` (token on stdout, line appended to the file)
        r = sc.run([sc.RECON5T, "token", "--role", "console", "--name", "console-1", "--append", tokens_file])
        tokens["console"] = r.stdout.strip()
        if len(tokens["console"]) != 64 or tokens["console"] in open(tokens_file).read():
            raise AssertionError("recon5t token: %r" % r.stdout)
        token_path = os.path.join(work, "console.token")
        with open(token_path, "w") as f:
            f.write(tokens["console"] + "\n")
        bearer = lambda r: [("authorization", "Bearer " + tokens[r])]  # noqa: E731

        scan = sc.make_phantom(work, matrix=32, coils=4)
        xml, records = sc.read_scan(scan)

        def messages(priority=0):
            return sc.scan_messages(pb, xml, records, priority=priority,
                                    job_id="auth-test")

        def messages_with_patient(priority=0):
            gen = messages(priority)
            first = next(gen)
            first.header.patient.patient_name = PATIENT
            first.header.patient.study_instance_uid = UID
            yield first
            yield from gen

        # 1. plaintext off loopback without insecure = 1: refused, the message names the keys
        r = subprocess.run([sc.RECON5TD, "--listen", "0.0.0.0:%d" % sc.free_port(), "--backend", "cpu"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0 or "tls_cert" not in r.stderr + r.stdout or "insecure" not in r.stderr + r.stdout:
            raise AssertionError("plaintext on 0.0.0.0 was not refused (%d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
        print("plaintext off loopback refused:", (r.stderr + r.stdout).strip().splitlines()[-1])

        # 2. plaintext loopback with a tokens file: the same check on the request metadata
        audit = os.path.join(work, "audit.jsonl")
        d = Daemon(work, pb, hpb, ["--tokens-file", tokens_file, "--audit-log", audit])
        ch = grpc.insecure_channel(d.address)
        expect(caps(pb, ch), grpc.StatusCode.UNAUTHENTICATED, "no credentials")
        expect(caps(pb, ch, [("authorization", "Bearer " + "0" * 64)]), grpc.StatusCode.UNAUTHENTICATED,
               "unknown token")
        expect(caps(pb, ch, bearer("monitor")), grpc.StatusCode.OK, "monitor on Capabilities")
        ev, code, details = recon(pb, ch, messages(), bearer("monitor"))
        if code != grpc.StatusCode.PERMISSION_DENIED or "monitor" not in details:
            raise AssertionError("monitor on Reconstruct: %s %s" % (code, details))
        ev, code, details = recon(pb, ch, messages_with_patient(priority=0), bearer("research"))
        if code != grpc.StatusCode.OK or n_images(ev) < 1:
            raise AssertionError("research Reconstruct: %s %s" % (code, details))
        ch.close()
        d.stop()
        if "runs at research priority" not in d.text():
            raise AssertionError("research asking console priority: no log line\n" + d.text())

        lines = open(audit).read().splitlines()
        if oct(os.stat(audit).st_mode & 0o777) != "0o600":
            raise AssertionError("audit log mode %o" % (os.stat(audit).st_mode & 0o777))
        recs = [json.loads(x) for x in lines]
        if len(recs) != 5:
            raise AssertionError("expected 5 audit lines (one per decision), got %d:\n%s" % (len(recs), "\n".join(lines)))
        for rec in recs:
            for k in ("time", "identity", "role", "peer", "method", "job_id", "outcome", "code", "study_uid_sha256"):
                if k not in rec:
                    raise AssertionError("audit line lacks %s: %s" % (k, rec))
            if not rec["time"].endswith("Z") or "T" not in rec["time"]:
                raise AssertionError("audit time not UTC ISO 8601: %s" % rec["time"])
        text = "\n".join(lines)
        if PATIENT in text or "Canary" in text or UID in text:
            raise AssertionError("patient data in the audit log:\n" + text)
        outcomes = [(x["role"], x["outcome"]) for x in recs]
        if outcomes[:4] != [("none", "UNAUTHENTICATED"), ("none", "UNAUTHENTICATED"), ("monitor", "OK"),
                            ("monitor", "PERMISSION_DENIED")]:
            raise AssertionError("audit outcomes %s" % outcomes)
        last = recs[4]
        if (last["role"], last["outcome"], last["identity"]) != ("research", "OK", "token:research-1") or \
                last["study_uid_sha256"] != hashlib.sha256(UID.encode()).hexdigest() or \
                "research priority" not in last["note"] or not last["job_id"]:
            raise AssertionError("research Reconstruct audit line: %s" % last)
        print("audit: %d lines, fields and outcomes as expected" % len(recs))

        # 2b. the admin RPCs: research and console tokens are refused, an admin cancels any job and drains
        d = Daemon(work, pb, hpb, ["--tokens-file", tokens_file])
        ch = grpc.insecure_channel(d.address)
        cancel = ch.unary_unary("/recon5t.v1.Recon/CancelJob", request_serializer=pb.CancelJobRequest.SerializeToString,
                                response_deserializer=pb.CancelJobReply.FromString)
        drain = ch.unary_unary("/recon5t.v1.Recon/Drain", request_serializer=pb.DrainRequest.SerializeToString,
                               response_deserializer=pb.DrainReply.FromString)

        def admin_call(fn, request, who):
            try:
                return grpc.StatusCode.OK, fn(request, timeout=20, metadata=bearer(who))
            except grpc.RpcError as e:
                return e.code(), e.details()

        for who in ("research", "console", "monitor"):
            for fn, req, name in ((cancel, pb.CancelJobRequest(job_id="x"), "CancelJob"), (drain, pb.DrainRequest(), "Drain")):
                code, details = admin_call(fn, req, who)
                if code != grpc.StatusCode.PERMISSION_DENIED or "admin" not in details:
                    raise AssertionError("%s token on %s: %s %s" % (who, name, code, details))
        code, details = admin_call(cancel, pb.CancelJobRequest(job_id="no-such-job"), "admin")
        if code != grpc.StatusCode.NOT_FOUND:
            raise AssertionError("admin CancelJob of an unknown job: %s %s" % (code, details))
        # a console's stream, held open after its first batch: the admin cancels it by its job id
        scan_msgs = list(messages())
        release = threading.Event()

        def held():
            yield scan_msgs[0]
            yield scan_msgs[1]
            release.wait(60)

        stream = ch.stream_stream(sc.RECONSTRUCT, request_serializer=pb.ScanMessage.SerializeToString,
                                  response_deserializer=pb.ReconEvent.FromString)
        responses = stream(held(), timeout=60, metadata=bearer("console"))
        first = next(responses)
        if first.WhichOneof("kind") != "accepted":
            raise AssertionError("first event %s" % first.WhichOneof("kind"))
        job_id = first.accepted.job_id
        code, reply = admin_call(cancel, pb.CancelJobRequest(job_id=job_id), "admin")
        if code != grpc.StatusCode.OK or reply.state != "ingesting":
            raise AssertionError("admin CancelJob %s: %s %s" % (job_id, code, reply))
        try:
            for _ in responses:
                pass
            raise AssertionError("the cancelled stream ended OK")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED or "cancelled by admin token:admin-1" not in e.details():
                raise AssertionError("cancelled stream: %s %s" % (e.code(), e.details()))
            print("admin CancelJob %s: the console's stream ended %s: %s" % (job_id, e.code().name, e.details()))
        release.set()
        ev, code, details = recon(pb, ch, messages(), bearer("console"))  # the server goes on serving
        if code != grpc.StatusCode.OK or n_images(ev) < 1:
            raise AssertionError("a scan after the cancel: %s %s" % (code, details))
        code, reply = admin_call(drain, pb.DrainRequest(), "admin")
        if code != grpc.StatusCode.OK or not reply.started:
            raise AssertionError("admin Drain: %s %s" % (code, reply))
        try:
            rc = d.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("recon5td still running 60 s after an admin Drain:\n" + d.text())
        ch.close()
        d.log.close()
        if rc != 0 or "Drain by admin token:admin-1" not in d.text():
            raise AssertionError("after an admin Drain: exit %d\n%s" % (rc, d.text()))
        print("admin Drain: recon5td drained and exited 0; research/console/monitor tokens: PERMISSION_DENIED")

        # 3. mutual TLS: console certificate → images; foreign CA → handshake fails
        creds = lambda n: grpc.ssl_channel_credentials(rd("ca.crt"), rd(n + ".key"), rd(n + ".crt"))  # noqa: E731
        d = Daemon(work, pb, hpb, ["--tls-cert", os.path.join(certs, "server.crt"), "--tls-key",
                                   os.path.join(certs, "server.key"), "--tls-client-ca",
                                   os.path.join(certs, "ca.crt")])
        target = "localhost:%d" % d.port
        ch = grpc.secure_channel(target, creds("console"))
        ev, code, details = recon(pb, ch, messages())
        if code != grpc.StatusCode.OK or n_images(ev) < 1:
            raise AssertionError("mTLS console Reconstruct: %s %s" % (code, details))
        ch.close()
        ch = grpc.secure_channel(target, creds("monitor"))
        ev, code, details = recon(pb, ch, messages())
        if code != grpc.StatusCode.PERMISSION_DENIED:
            raise AssertionError("mTLS monitor Reconstruct: %s %s" % (code, details))
        ch.close()
        foreign = grpc.ssl_channel_credentials(rd("ca.crt"), rd("foreign.key"), rd("foreign.crt"))
        ch = grpc.secure_channel(target, foreign)
        expect(caps(pb, ch), grpc.StatusCode.UNAVAILABLE, "a client certificate of a foreign CA")
        ch.close()
        ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(rd("ca.crt")))
        expect(caps(pb, ch), grpc.StatusCode.UNAVAILABLE, "TLS without a client certificate under mTLS")
        ch.close()
        d.stop()
        print("mTLS: console images, monitor denied, foreign CA and no certificate refused")

        # 4. TLS with tokens; the certificate rotated on disk is served to a new connection
        live = os.path.join(work, "live")
        os.makedirs(live)
        shutil.copy(os.path.join(certs, "server.crt"), live)
        shutil.copy(os.path.join(certs, "server.key"), live)
        d = Daemon(work, pb, hpb, ["--tls-cert", os.path.join(live, "server.crt"), "--tls-key",
                                   os.path.join(live, "server.key"), "--tokens-file", tokens_file],
                   host="0.0.0.0")
        target = "localhost:%d" % d.port
        ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(rd("ca.crt")))
        ev, code, details = recon(pb, ch, messages(), bearer("console"))
        if code != grpc.StatusCode.OK or n_images(ev) < 1:
            raise AssertionError("token over TLS: %s %s" % (code, details))
        expect(caps(pb, ch), grpc.StatusCode.UNAUTHENTICATED, "TLS without a token")
        ch.close()
        # recon5t send over TLS with --ca and --token-file; without the token it is refused
        out = os.path.join(work, "send-out")
        sc.run([sc.RECON5T, "send", scan, "--server", target, "--out", out, "--quiet", "--ca",
                os.path.join(certs, "ca.crt"), "--token-file", token_path])
        if not [n for n in os.listdir(out) if n != "completed.txt"]:
            raise AssertionError("recon5t send over TLS wrote no images: %s" % os.listdir(out))
        r = subprocess.run([sc.RECON5T, "send", scan, "--server", target, "--out", out + "2", "--quiet", "--ca",
                            os.path.join(certs, "ca.crt")], capture_output=True, text=True, timeout=120)
        if r.returncode == 0 or "UNAUTHENTICATED" not in r.stderr + r.stdout:
            raise AssertionError("recon5t send without a token: %d %s%s" % (r.returncode, r.stdout, r.stderr))
        # recon5t health on the TLS main port: the console token (health is allowed to every role)
        r = subprocess.run([sc.RECON5T, "health", "--server", target, "--ca", os.path.join(certs, "ca.crt"),
                            "--token-file", token_path], capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or r.stdout.strip() != "SERVING":
            raise AssertionError("recon5t health over TLS with a token: %d %s%s" % (r.returncode, r.stdout, r.stderr))
        r = subprocess.run([sc.RECON5T, "health", "--server", target, "--ca", os.path.join(certs, "ca.crt")],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0 or "UNAUTHENTICATED" not in r.stderr:
            raise AssertionError("recon5t health over TLS without a token: %d %s%s" % (r.returncode, r.stdout, r.stderr))
        print("recon5t health over TLS: SERVING with --ca --token-file, UNAUTHENTICATED without the token")
        # a handshake's cost: new connections, each a fresh TLS handshake
        t0 = time.time()
        n = 20
        for _ in range(n):
            c2 = grpc.secure_channel(target, grpc.ssl_channel_credentials(rd("ca.crt")),
                                     options=[("grpc.use_local_subchannel_pool", 1)])
            expect(caps(pb, c2, bearer("monitor")), grpc.StatusCode.OK, "monitor token over TLS")
            c2.close()
        tls_ms = (time.time() - t0) * 1000 / n
        print("new TLS connection + Capabilities: %.1f ms each (%d connections)" % (tls_ms, n))

        def served_serial():
            pem = ssl.get_server_certificate(("127.0.0.1", d.port))
            out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, capture_output=True,
                                 text=True, check=True).stdout
            return out.strip()

        before = served_serial()
        # a broken new file: the old certificate stays, the log says why
        with open(os.path.join(live, "server.crt"), "w") as f:
            f.write("not a certificate\n")
        if served_serial() != before:
            raise AssertionError("a broken certificate file replaced the served one")
        end = time.time() + 30
        while "not usable, keeping the old ones" not in d.text():
            if time.time() > end:
                raise AssertionError("no log line for the broken certificate:\n" + d.text())
            time.sleep(0.1)
        # the rotated certificate (a new one from the same CA)
        fresh = os.path.join(work, "fresh")
        os.makedirs(fresh)
        # a new server certificate from the same CA (the clients keep trusting it), serial 5eed0001
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-subj", "/CN=recon5td", "-keyout", os.path.join(fresh, "new.key"),
                        "-out", os.path.join(fresh, "new.csr")], check=True, capture_output=True)
        with open(os.path.join(fresh, "ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        subprocess.run(["openssl", "x509", "-req", "-in", os.path.join(fresh, "new.csr"), "-CA",
                        os.path.join(certs, "ca.crt"), "-CAkey", os.path.join(certs, "ca.key"), "-set_serial",
                        "0x5eed0001", "-days", "30", "-extfile", os.path.join(fresh, "ext"), "-out",
                        os.path.join(fresh, "new.crt")], check=True, capture_output=True)
        shutil.copy(os.path.join(fresh, "new.key"), os.path.join(live, "server.key.tmp"))
        shutil.copy(os.path.join(fresh, "new.crt"), os.path.join(live, "server.crt.tmp"))
        os.replace(os.path.join(live, "server.key.tmp"), os.path.join(live, "server.key"))
        os.replace(os.path.join(live, "server.crt.tmp"), os.path.join(live, "server.crt"))
        end = time.time() + 30
        after = served_serial()
        while after != "serial=5EED0001":
            if time.time() > end:
                raise AssertionError("rotated certificate not served: %s (before %s)\n%s" % (after, before, d.text()))
            time.sleep(0.2)
            after = served_serial()
        ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(rd("ca.crt")))
        expect(caps(pb, ch, bearer("console")), grpc.StatusCode.OK, "after rotation")
        ch.close()
        d.stop()
        print("rotation: %s -> %s without a restart" % (before, after))
    print("test_service_auth: PASS")


if __name__ == "__main__":
    main()
