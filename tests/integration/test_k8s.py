"""docker/k8s: the kustomizations render with Debian 12's kubectl 1.20 (kustomize v2.0.3) and the
rendered objects carry what a GPU cluster needs (one GPU per pod, probes with timeouts above
1 s, the non-root read-only securityContext, a grace period covering grace_s, the headless
Service, the PDB, the HPA on recon5t_queue_depth, the TLS/token Secrets mounted where the
config points, the Indexed Job); then the research Job's entry script reconstructs two phantom
files locally (no cluster) and writes DICOM and its results rows. SKIP without that kubectl or
python3-yaml."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

KUBECTL = os.environ.get("R5_KUBECTL", "/usr/local/lib/recon5t/kubernetes-client/usr/bin/kubectl")
K8S = os.path.join(sc.R5_SOURCE, "docker", "k8s")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def render(sub):
    out = subprocess.run([KUBECTL, "kustomize", os.path.join(K8S, sub)], capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError("kubectl kustomize %s failed:\n%s" % (sub, out.stderr))
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}


def probes_ok(container, kind):
    for name in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = container.get(name)
        check(p is not None, "%s missing" % name)
        if not p:
            continue
        check(p.get("timeoutSeconds", 1) > 1, "%s timeoutSeconds %s is not above 1 s" % (name, p.get("timeoutSeconds")))
        if kind == "exec":
            cmd = p.get("exec", {}).get("command", [])
            check(cmd[:2] == ["recon5t", "health"] and "127.0.0.1:50052" in cmd,
                  "%s is not the bundled health client on the health port: %s" % (name, cmd))
            check("grpc" not in p, "%s has both exec and grpc" % name)
        else:
            check(p.get("grpc", {}).get("port") == 50052 and "exec" not in p, "%s is not a grpc probe on 50052: %s"
                  % (name, p))


def check_pod_security(spec, container, what):
    psc, csc = spec.get("securityContext", {}), container.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0 and "fsGroup" in psc,
          "%s: pod securityContext not non-root: %s" % (what, psc))
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "%s: no RuntimeDefault seccomp" % what)
    check(csc.get("readOnlyRootFilesystem") is True, "%s: root filesystem writable" % what)
    check(csc.get("allowPrivilegeEscalation") is False, "%s: privilege escalation allowed" % what)
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], "%s: capabilities not dropped" % what)
    check(str(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")) == "1",
          "%s: limits nvidia.com/gpu is not 1" % what)


def check_service(objs):
    conf_map = objs[("ConfigMap", "recon5t-config")]["data"]["recon5td.conf"]
    conf = dict(re.match(r"\s*(\w+)\s*=\s*(.*?)\s*$", l).groups() for l in conf_map.splitlines()
                if l.strip() and not l.strip().startswith("#"))
    dep = objs[("Deployment", "recon5t")]
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(c["image"].startswith("registry.example.org/recon5t:"), "image not set by kustomize images: %s" % c["image"])
    check_pod_security(spec, c, "Deployment")
    grace = float(conf["grace_s"])
    check(spec.get("terminationGracePeriodSeconds", 30) >= grace + 10,
          "terminationGracePeriodSeconds %s does not cover grace_s %g" % (spec.get("terminationGracePeriodSeconds"), grace))
    check(conf.get("health_listen", "").endswith(":50052"), "health_listen is not the probes' port")
    # every file the config names lies under a mount, and the TLS/token mounts are Secrets
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for key in ("tls_cert", "tls_key", "tls_client_ca", "tokens_file"):
        path = conf.get(key, "")
        mount = [m for m in mounts if path.startswith(m + "/")]
        check(mount and "secret" in volumes[mounts[mount[0]]], "%s = %s is not on a Secret mount" % (key, path))
    for writable in ("/tmp", "/var/tmp"):
        check(writable in mounts and "emptyDir" in volumes[mounts[writable]], "%s is no emptyDir" % writable)
    check(conf["spool_dir"].startswith("/var/tmp/"), "spool_dir is not on the writable /var/tmp")
    check("--config" in c["command"] and "/etc/recon5t/conf/recon5td.conf" in c["command"], "config not used")
    headless = objs[("Service", "recon5t-headless")]["spec"]
    check(headless.get("clusterIP") == "None" and headless["ports"][0]["port"] == 50051, "no headless gRPC Service")
    check(("Service", "recon5t-metrics") in objs, "no metrics Service")
    pdb = objs[("PodDisruptionBudget", "recon5t")]
    check(pdb["apiVersion"] in ("policy/v1beta1", "policy/v1") and pdb["spec"].get("maxUnavailable") == 1, "PDB")
    hpa = objs[("HorizontalPodAutoscaler", "recon5t")]
    metric = hpa["spec"]["metrics"][0]
    check(hpa["apiVersion"] == "autoscaling/v2beta2" and metric["type"] == "Pods"
          and metric["pods"]["metric"]["name"] == "recon5t_queue_depth", "HPA is not on recon5t_queue_depth")
    sel = dep["spec"]["selector"]["matchLabels"]
    for svc in (headless, objs[("Service", "recon5t-metrics")]["spec"], pdb["spec"]["selector"]["matchLabels"]):
        labels = svc.get("selector", svc)
        check(all(dep["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in labels.items()),
              "a selector does not match the pods: %s" % labels)
    check(sel.items() <= dep["spec"]["template"]["metadata"]["labels"].items(), "Deployment selector")
    return c


def check_research(objs):
    job = objs[("Job", "recon5t-research")]
    spec = job["spec"]
    cm = objs[("ConfigMap", "recon5t-research")]["data"]
    files = [l for l in cm["files.txt"].splitlines() if l.strip() and not l.strip().startswith("#")]
    check(spec.get("completionMode") == "Indexed", "Job is not Indexed")
    check(spec.get("completions") == len(files), "completions %s != %d files" % (spec.get("completions"), len(files)))
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    check_pod_security(pod, c, "Job")
    check(pod.get("restartPolicy") == "Never", "Job restartPolicy")
    check("reconstruct-one.sh" in cm and c["command"][-1].endswith("/reconstruct-one.sh"), "entry script")
    with open(os.path.join(K8S, "research", "reconstruct-one.sh")) as f:
        check(f.read() == cm["reconstruct-one.sh"], "ConfigMap script differs from the file")


def run_one(script, env, index):
    e = dict(os.environ, **env, JOB_COMPLETION_INDEX=str(index))
    return subprocess.run(["sh", script], env=e, capture_output=True, text=True)


def check_entry_script():
    script = os.path.join(K8S, "research", "reconstruct-one.sh")
    with sc.tempdir() as work:
        data = os.path.join(work, "data")
        os.makedirs(os.path.join(data, "study"))
        sc.make_phantom(os.path.join(data, "study"), name="a.h5", matrix="32", coils=4)
        sc.make_phantom(os.path.join(data, "study"), name="b.h5", matrix="32", coils=4)
        lst = os.path.join(work, "files.txt")
        with open(lst, "w") as f:
            f.write("# test\nstudy/a.h5\n\nstudy/b.h5\nstudy/missing.h5\n")
        env = {"R5_FILE_LIST": lst, "R5_DATA": data, "R5_RESULTS": os.path.join(data, "results"),
               "R5_RECON5T": sc.RECON5T, "R5_PIPELINE": "cartesian"}
        rows = {}
        for i in (0, 1, 2):
            r = run_one(script, env, i)
            check(r.returncode == (0 if i < 2 else 1), "index %d exited %d:\n%s%s" % (i, r.returncode, r.stdout, r.stderr))
            with open(os.path.join(data, "results", "results", "%05d.tsv" % i)) as f:
                rows[i] = f.read().rstrip("\n").split("\t")
        for i, name in ((0, "study/a.h5"), (1, "study/b.h5")):
            file, pipeline, status, seconds, images = rows[i]
            top = os.path.join(data, "results", "dicom", "%05d" % i)
            dicoms = sorted(os.path.join(d, n) for d, _, names in os.walk(top) for n in names)
            check(file == name and pipeline == "cartesian" and status == "ok" and float(seconds) >= 0
                  and int(images) == len(dicoms) > 0, "index %d row %s" % (i, rows[i]))
            import pydicom
            ds = pydicom.dcmread(dicoms[0])
            check(int(ds.Rows) == 32, "index %d: DICOM rows %s" % (i, ds.Rows))
        check(rows[2][2].startswith("failed") and rows[2][4] == "0", "missing file's row %s" % rows[2])
        for bad in ("", "x", "9"):
            r = run_one(script, env, bad)
            check(r.returncode == 2, "index '%s' exited %d, not 2" % (bad, r.returncode))
        print("research rows:\n" + "\n".join("\t".join(rows[i]) for i in sorted(rows)))


def main():
    global yaml
    if not os.access(KUBECTL, os.X_OK):
        sc.skip("%s (Debian 12's kubectl 1.20) is absent" % KUBECTL)
    try:
        import yaml  # noqa: F401
    except ImportError:
        sc.skip("python3-yaml is absent")
    base = render(".")
    c = check_service(base)
    probes_ok(c, "exec")
    grpc = render("grpc-probes")
    probes_ok(grpc[("Deployment", "recon5t")]["spec"]["template"]["spec"]["containers"][0], "grpc")
    check_research(render("research"))
    if os.access(sc.RECON5T, os.X_OK) and shutil.which("sh"):
        check_entry_script()
    else:
        print("note: %s not built: the entry script was not run" % sc.RECON5T)
    if failures:
        print("FAIL:\n" + "\n".join(failures))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
