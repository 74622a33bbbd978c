"""recon5td's Prometheus endpoint (metrics_listen): one good job and one failing job (a
parameter the pipeline does not use: INVALID_ARGUMENT from the job) and one refused stream
(garbage bytes), then GET /metrics: `promtool check metrics` passes on the exposition, and the
values show what happened (jobs_total by outcome, handled_total by gRPC code, ingest bytes at
least the k-space bytes sent, histogram buckets cumulative with +Inf = _count); 404 for other
paths, 405 for POST; no job id or client job id appears in it. Then a real Prometheus scrapes
the endpoint every second and its query API returns recon5t_jobs_total. SKIP (77) without
prometheus/promtool. Last, SIGTERM while a stream is open: recon5t_serving goes to 0 and the
separate health port (plaintext) says NOT_SERVING, the open job still completes."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402


def get(url, method="GET", timeout=10):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} of the exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "bad sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())), 0.0)


def check_histograms(s, name):
    series = {}
    for (n, labels), v in s.items():
        if n == name + "_bucket":
            le = dict(labels)["le"]
            rest = frozenset(l for l in labels if l[0] != "le")
            series.setdefault(rest, []).append((float("inf") if le == "+Inf" else float(le), v))
    assert series, "no %s series" % name
    for rest, buckets in series.items():
        buckets.sort()
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), (name, rest, buckets)
        assert buckets[-1][0] == float("inf")
        assert s[(name + "_count", rest)] == counts[-1], (name, rest)
    return series


def main():
    sc.require_binaries()
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        sc.skip("prometheus/promtool not installed")
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, matrix="32", coils=4)
        xml, records = sc.read_scan(scan)
        health_port = sc.free_port()
        server = sc.Server(work, pb, hpb, ["--workers", "1", "--memory-budget-mb", "256",
                                           "--metrics-listen", "127.0.0.1:0",
                                           "--health-listen", "127.0.0.1:%d" % health_port])
        try:
            m = re.search(r"metrics on \S+ \(port (\d+)\)", server.log_text())
            assert m, "no metrics port in the log:\n" + server.log_text()
            url = "http://127.0.0.1:%s" % m.group(1)
            run_cases(server, pb, xml, records, url, work, prometheus, promtool)
            drain_case(server, pb, hpb, xml, records, url, health_port)
        finally:
            if server.proc.poll() is None:
                server.stop()
        print("PASS")


def run_cases(server, pb, xml, records, url, work, prometheus, promtool):
    events, code, details = server.reconstruct(sc.scan_messages(pb, xml, records, job_id="metrics-ok-7"), timeout=120)
    assert code.name == "OK", (code, details)
    events, code, details = server.reconstruct(
        sc.scan_messages(pb, xml, records, pipeline="cartesian", params={"sense.maps": 2}, job_id="metrics-bad-8"),
        timeout=120)
    assert code.name == "INVALID_ARGUMENT", (code, details)
    print("failing job:", code.name, details)
    events, code, details = server.reconstruct([b"\x0a\xff\xff\xff\xff\xff\xff\xff\x7f garbage"], timeout=10, raw=True)
    assert code.name == "INVALID_ARGUMENT", (code, details)
    sent = sum(len(sc.acquisition(pb, r).data) for r in records)

    # a stream leaves the gauge when the server lets go of its call, just after its status went out
    poll_metric(url, "recon5t_streams_active", 0)
    t0 = time.time()
    status, text = get(url + "/metrics")
    latency = time.time() - t0
    assert status == 200, (status, text)
    print("scrape: %.1f ms, %d bytes, %d lines" % (latency * 1e3, len(text), text.count("\n")))
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, "promtool check metrics:\n%s%s" % (check.stdout, check.stderr)
    assert "metrics-ok-7" not in text and "metrics-bad-8" not in text, "a job id in the metrics"
    s = samples(text)
    ok = value(s, "recon5t_jobs_total", pipeline="auto", outcome="ok")
    bad = value(s, "recon5t_jobs_total", pipeline="cartesian", outcome="error")
    assert ok == 1 and bad == 1, (ok, bad, [l for l in text.splitlines() if "jobs_total" in l])
    rec = dict(grpc_type="bidi_stream", grpc_service="recon5t.v1.Recon", grpc_method="Reconstruct")
    assert value(s, "grpc_server_started_total", **rec) == 3
    assert value(s, "grpc_server_handled_total", grpc_code="OK", **rec) == 1
    assert value(s, "grpc_server_handled_total", grpc_code="INVALID_ARGUMENT", **rec) == 2
    assert value(s, "grpc_server_handling_seconds_count", **rec) == 3
    health = dict(grpc_type="unary", grpc_service="grpc.health.v1.Health", grpc_method="Check")
    assert value(s, "grpc_server_handled_total", grpc_code="OK", **health) >= 1
    ingest = value(s, "recon5t_ingest_bytes_total")
    assert ingest >= 2 * sent, (ingest, sent)
    check_histograms(s, "grpc_server_handling_seconds")
    stages = check_histograms(s, "recon5t_stage_seconds")
    print("stages:", sorted(dict(k)["stage"] for k in stages))
    assert value(s, "recon5t_workers_usable") == 1 and value(s, "recon5t_serving") == 1
    assert value(s, "recon5t_queue_depth") == 0 and value(s, "recon5t_streams_active") == 0
    assert get(url + "/other")[0] == 404 and get(url + "/metrics", "POST")[0] == 405
    # overhead of a scrape, many times (the endpoint is on its own thread)
    t0 = time.time()
    for _ in range(50):
        get(url + "/metrics")
    print("scrape: %.2f ms mean over 50" % ((time.time() - t0) / 50 * 1e3))

    port = sc.free_port()
    target = url.split("//")[1]
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: recon5td\n"
                "    static_configs:\n      - targets: ['%s']\n" % target)
    log = open(os.path.join(work, "prometheus.log"), "w")
    prom = subprocess.Popen([prometheus, "--config.file", config, "--storage.tsdb.path", os.path.join(work, "tsdb"),
                             "--web.listen-address", "127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
    try:
        end, found = time.time() + 120, None
        query = "http://127.0.0.1:%d/api/v1/query?query=recon5t_jobs_total" % port
        while time.time() < end and found is None:
            assert prom.poll() is None, "prometheus exited:\n" + open(log.name).read()
            try:
                status, body = get(query, timeout=5)
                result = json.loads(body)["data"]["result"] if status == 200 else []
                for r in result:
                    if r["metric"].get("outcome") == "ok" and float(r["value"][1]) == 1:
                        found = r
            except (OSError, ValueError, KeyError):
                pass
            if found is None:
                time.sleep(0.5)
        assert found, "prometheus never returned recon5t_jobs_total:\n" + open(log.name).read()[-3000:]
        print("prometheus:", found["metric"], found["value"][1])
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=30)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()


def poll_metric(url, name, want, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        status, text = get(url + "/metrics")
        if status == 200 and value(samples(text), name) == want:
            return
        time.sleep(0.05)
    raise AssertionError("%s never became %s" % (name, want))


def drain_case(server, pb, hpb, xml, records, url, health_port):
    gate, result = threading.Event(), {}

    def slow_client():
        def messages():
            yield from sc.scan_messages(pb, xml, records, end=False)
            gate.wait(60)
            yield pb.ScanMessage(end=pb.End())
        result["r"] = server.reconstruct(messages(), timeout=120)

    t = threading.Thread(target=slow_client)
    t.start()
    try:
        poll_metric(url, "recon5t_streams_active", 1)
        server.proc.send_signal(sc.signal.SIGTERM)
        poll_metric(url, "recon5t_serving", 0)
        channel = sc.grpc.insecure_channel("127.0.0.1:%d" % health_port)  # plaintext
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=hpb.HealthCheckRequest.SerializeToString,
                                    response_deserializer=hpb.HealthCheckResponse.FromString)
        status = check(hpb.HealthCheckRequest(), timeout=10).status
        channel.close()
        assert status == hpb.HealthCheckResponse.NOT_SERVING, status
        print("draining: recon5t_serving 0, health port (plaintext) NOT_SERVING")
    finally:
        gate.set()
        t.join(120)
    events, code, details = result.get("r", ([], None, "no result"))
    assert code is not None and code.name == "OK", (code, details)
    assert server.proc.wait(timeout=60) == 0


if __name__ == "__main__":
    main()
