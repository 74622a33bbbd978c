"""docker/compose.yaml checked against the image it runs (docker/Dockerfile) and the server's
configuration (docker/recon5td.conf, the keys recon5td reads):

- every published container port is EXPOSEd by the image and is one of recon5td.conf's listen
  ports; the gRPC, health and metrics ports are all published;
- the compose health check is the image's HEALTHCHECK and probes the conf's health port;
- the volume is the image's VOLUME, the conf's spool_dir lies in it, the root is read-only with
  /tmp a tmpfs (the only paths the server writes);
- every R5_* variable names a key recon5td accepts (its --help), and the PACS it points at is
  the compose Orthanc service: host = service name, port and AE title = Orthanc's settings, and
  that port is published by the Orthanc service;
- the stop grace period covers grace_s;
- recon5td itself starts with recon5td.conf plus the compose environment (listen addresses
  moved to loopback ports, the spool to a temporary folder) and reports SERVING.
"""
import os
import re
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import svc_common as sc  # noqa: E402

DOCKER = os.path.join(sc.R5_SOURCE, "docker")


def dockerfile_run_stage():
    """EXPOSE, HEALTHCHECK CMD, VOLUME and USER of the run stage (the server image)."""
    text = open(os.path.join(DOCKER, "Dockerfile")).read().replace("\\\n", " ")
    start = text.index("\nFROM runtime-${VARIANT} AS run")
    end = text.find("\nFROM ", start + 1)
    stage = text[start:end if end > 0 else len(text)]
    out = {"expose": set(), "volumes": [], "health": None, "user": None}
    for line in stage.splitlines():
        words = line.split(None, 1)
        if not words:
            continue
        op, rest = words[0], words[1] if len(words) > 1 else ""
        if op == "EXPOSE":
            out["expose"] |= {int(p.split("/")[0]) for p in rest.split()}
        elif op == "VOLUME":
            out["volumes"] += re.findall(r'"([^"]+)"', rest)
        elif op == "HEALTHCHECK":
            out["health"] = re.findall(r'"([^"]+)"', rest[rest.index("CMD"):])
        elif op == "USER":
            out["user"] = rest.strip()
    return out


def conf():
    keys = {}
    for line in open(os.path.join(DOCKER, "recon5td.conf")):
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            k, v = (x.strip() for x in line.split("=", 1))
            keys[k] = v
    return keys


def port_of(hostport):
    return int(hostport.rsplit(":", 1)[1])


def main():
    try:
        import yaml
    except ImportError:
        sc.skip("python3-yaml not installed")
    sc.require_binaries()
    compose = yaml.safe_load(open(os.path.join(DOCKER, "compose.yaml")))
    svc = compose["services"]["recon5td"]
    df = dockerfile_run_stage()
    cf = conf()
    h = subprocess.run([sc.RECON5TD, "--help"], capture_output=True, text=True)
    help_text = h.stdout + h.stderr
    known = set(re.findall(r"^\s+--([a-z0-9-]+)", help_text, re.M))
    assert "listen" in known and "pacs-host" in known, help_text[:500]

    published = {int(str(p).split(":")[-1].split("/")[0]) for p in svc["ports"]}
    listen = {k: port_of(cf[k]) for k in ("listen", "health_listen", "metrics_listen") if cf.get(k)}
    assert published <= df["expose"], "compose publishes %s, the image EXPOSEs %s" % (published, df["expose"])
    assert set(listen.values()) == published, "conf listens on %s, compose publishes %s" % (listen, published)
    assert all(cf[k].startswith("0.0.0.0:") for k in listen), "a container must listen on 0.0.0.0: %s" % listen
    print("ports: %s published, EXPOSEd by the image and listened on by recon5td.conf (%s)" %
          (sorted(published), listen))

    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:] == df["health"], (test, df["health"])
    assert port_of(test[test.index("--server") + 1]) == listen["health_listen"], test
    print("health check: the image's (%s), on health_listen's port" % " ".join(test[1:]))

    targets = [v.split(":", 1)[1] for v in svc["volumes"]]
    assert targets == df["volumes"], (targets, df["volumes"])
    assert any(cf["spool_dir"].startswith(t + "/") for t in targets), (cf["spool_dir"], targets)
    assert svc.get("read_only") is True and "/tmp" in svc.get("tmpfs", []), svc
    assert df["user"] and df["user"].split(":")[0] not in ("0", "root"), df["user"]
    print("volumes: %s = the image's VOLUME, spool_dir %s in it; read-only root, /tmp tmpfs, user %s" %
          (targets, cf["spool_dir"], df["user"]))

    env = {k: str(v) for k, v in svc["environment"].items()}
    for k in env:
        assert k.startswith("R5_"), k
        flag = k[3:].lower().replace("_", "-")
        assert flag in known, "%s is not a recon5td key (--%s)" % (k, flag)
    orthanc = compose["services"][env["R5_PACS_HOST"]]
    oenv = {k: str(v) for k, v in orthanc["environment"].items()}
    assert env["R5_PACS_CALLED_AE"] == oenv.get("ORTHANC__DICOM_AET", "ORTHANC"), (env, oenv)
    assert env["R5_PACS_PORT"] == oenv.get("ORTHANC__DICOM_PORT", "4242"), (env, oenv)
    assert any(str(p).split(":")[-1] == env["R5_PACS_PORT"] for p in orthanc["ports"]), orthanc["ports"]
    assert env["R5_PACS_HOST"] in svc.get("depends_on", []), svc.get("depends_on")
    print("PACS: %s:%s AE %s = the compose service %s (Orthanc's DICOM port and AET)" %
          (env["R5_PACS_HOST"], env["R5_PACS_PORT"], env["R5_PACS_CALLED_AE"], env["R5_PACS_HOST"]))

    grace = float(cf.get("grace_s", 30))
    stop = svc.get("stop_grace_period", "10s")
    assert stop.endswith("s") and float(stop[:-1]) > grace, (stop, grace)

    with sc.tempdir() as work:
        ports = {k: sc.free_port() for k in ("LISTEN", "HEALTH_LISTEN", "METRICS_LISTEN")}
        run_env = dict(os.environ)
        run_env.update(env)
        run_env.update({"R5_" + k: "127.0.0.1:%d" % p for k, p in ports.items()})
        run_env["R5_SPOOL_DIR"] = os.path.join(work, "spool")
        log = open(os.path.join(work, "recon5td.log"), "w")
        server = subprocess.Popen([sc.RECON5TD, "--config", os.path.join(DOCKER, "recon5td.conf"),
                                   "--backend", "cpu"], env=run_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            health = test[1:]
            health[health.index("--server") + 1] = "127.0.0.1:%d" % ports["HEALTH_LISTEN"]
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, "recon5td refused the compose configuration:\n" + \
                    open(os.path.join(work, "recon5td.log")).read()[-2000:]
                h = subprocess.run([sc.RECON5T] + health[1:], capture_output=True, text=True)
                if h.returncode == 0:
                    break
                assert time.monotonic() < deadline, h.stderr
                time.sleep(0.3)
        finally:
            server.terminate()
            server.wait(timeout=60)
        print("recon5td --config recon5td.conf with the compose environment: %s" % h.stdout.strip())
    print("PASS: compose.yaml consistent with the image and the server (%s)" % shlex.join(test[1:]))


if __name__ == "__main__":
    main()
