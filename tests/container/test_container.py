"""The CPU image of docker/Dockerfile, built and run for real.

1. A Debian 12 base made locally (mmdebstrap --variant=minbase bookworm, podman import), once:
   its tag carries the hash of the recipe, so a machine that keeps podman's storage reuses it.
2. `podman build --isolation chroot --format docker --build-arg VARIANT=cpu`: the image's own
   build stage (scripts/install-deps.sh, scripts/build.sh); podman caches its layers, and the
   build's ccache lives in a build cache mount.
3. The image's metadata: non-root user, entry point, HEALTHCHECK kept, the volume; its size.
4. `podman create` + `podman export`: the image's file system, unpacked. Running a container is
   not possible on these machines (the OCI runtime cannot set rlimits); a chroot of the exported
   file system runs what the image would run: the image's ENTRYPOINT, Env, User and WorkingDir,
   in a private mount namespace where the root is bind-mounted READ-ONLY and only the volume
   (/var/lib/recon5t) and /tmp are writable. A chroot shares the host's network, so the listen
   addresses are overridden to loopback ports (R5_LISTEN, R5_HEALTH_LISTEN, R5_METRICS_LISTEN:
   the server's documented environment overrides), nothing else.
5. ldd inside the image: no library "not found". The image's HEALTHCHECK command, run inside the
   chroot, reports SERVING. The host's `recon5t send --format dicom` gets DICOM back from the
   server running from the image's file system: pydicom reads every file as MR Image Storage,
   dciodvfy reports no error (the checks of test_service_e2e). SIGTERM stops it cleanly.

SKIP (77) with the reason when podman, mmdebstrap or root (chroot, mount namespace) are missing,
or when R5_SKIP_CONTAINER=1.
"""
import base64
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import svc_common as sc  # noqa: E402

BASE_RECIPE = ["mmdebstrap", "--variant=minbase", "--format=tar", "bookworm"]
IMAGE = "localhost/recon5t:cpu-test"
OPENRECON = "localhost/recon5t:cpu-openrecon-test"
OPENRECON_KEY = "com.siemens-healthineers.magneticresonance.openrecon.metadata:1.1.0"
CACHE = os.environ.get("R5_CONTAINER_CACHE", os.path.expanduser("~/.cache/recon5t-container"))


def log(msg):
    print(msg, flush=True)


def podman(*args, capture=True, check=True):
    r = subprocess.run(["podman"] + list(args), capture_output=capture, text=True)
    if check and r.returncode != 0:
        raise AssertionError("podman %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                           r.stdout or "", r.stderr or ""))
    return r


def base_image(work):
    """The Debian 12 minbase image, made once per recipe."""
    digest = hashlib.sha256(json.dumps(BASE_RECIPE).encode()).hexdigest()[:12]
    tag = "localhost/recon5t-base:bookworm-" + digest
    if podman("image", "exists", tag, check=False).returncode == 0:
        log("base image %s: cached" % tag)
        return tag
    t0 = time.monotonic()
    tar = os.path.join(work, "rootfs.tar")
    r = subprocess.run(BASE_RECIPE + [tar], capture_output=True, text=True)
    assert r.returncode == 0, "mmdebstrap failed:\n" + r.stderr[-3000:]
    podman("import", tar, tag)
    os.unlink(tar)
    log("base image %s: made in %.0f s (mmdebstrap + podman import)" % (tag, time.monotonic() - t0))
    return tag


def build(base, extra=(), tag=None):
    tag = tag or IMAGE
    t0 = time.monotonic()
    logf = os.path.join(CACHE, "build.log")
    with open(logf, "w") as f:
        r = subprocess.run(["podman", "build", "--isolation", "chroot", "--format", "docker",
                            "--build-arg", "VARIANT=cpu", "--build-arg", "BASE=" + base] + list(extra) +
                           ["-f", os.path.join(sc.R5_SOURCE, "docker", "Dockerfile"), "-t", tag,
                            sc.R5_SOURCE], stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        with open(logf) as f:
            tail = f.read()[-6000:]
        raise AssertionError("podman build failed (log %s):\n%s" % (logf, tail))
    log("podman build (VARIANT=cpu) %s: %.0f s" % (tag, time.monotonic() - t0))


def inspect():
    cfg = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    c = cfg["Config"]
    size_mb = cfg["Size"] / 1e6
    # podman's inspect puts the health check beside Config, docker's inside it
    hc = c.get("Healthcheck") or cfg.get("Healthcheck") or {}
    c["Healthcheck"] = hc
    assert hc.get("Test", [None])[0] == "CMD" and "health" in hc["Test"], \
        "HEALTHCHECK lost (podman keeps it only with --format docker): %s" % hc
    user = c.get("User", "")
    assert user and user.split(":")[0] not in ("", "0", "root"), "the image runs as root: %r" % user
    assert c.get("Entrypoint"), "no ENTRYPOINT"
    assert "/var/lib/recon5t" in (c.get("Volumes") or {}), c.get("Volumes")
    log("image %s: %.0f MB, user %s, entrypoint %s, healthcheck %s, volumes %s" %
        (IMAGE, size_mb, user, c["Entrypoint"], hc["Test"][1:], sorted(c["Volumes"])))
    return c, size_mb


def export(work, image=IMAGE):
    cid = podman("create", image).stdout.strip()
    tar = os.path.join(work, "image.tar")
    try:
        podman("export", "-o", tar, cid)
    finally:
        podman("rm", cid, check=False)
    root = os.path.join(work, "rootfs")
    os.mkdir(root)
    with tarfile.open(tar) as t:
        t.extractall(root, numeric_owner=True)
    os.unlink(tar)
    return root


def image_env(cfg, overrides):
    env = {}
    for kv in cfg.get("Env") or []:
        k, _, v = kv.partition("=")
        env[k] = v
    env.update(overrides)
    return ["%s=%s" % kv for kv in sorted(env.items())]


def chroot_cmd(root, cfg, argv, env):
    user = cfg["User"]
    workdir = cfg.get("WorkingDir") or "/"
    return ["chroot", "--userspec=" + user, root, "/usr/bin/env", "-i"] + env + \
        ["/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir] + argv


def start_server(root, cfg, env, volume, logf):
    """recon5td from the image's ENTRYPOINT, in a private mount namespace with a read-only root."""
    inner = " && ".join([
        "mount --make-rprivate /",
        "mount --bind %(r)s %(r)s" % {"r": root},
        "mount --bind /dev %s/dev" % root,
        "mount -t proc proc %s/proc" % root,
        "mount --bind %s %s/var/lib/recon5t" % (volume, root),
        "mount -t tmpfs -o mode=1777,size=256m tmpfs %s/tmp" % root,
        "mount -o remount,bind,ro %s" % root,
        # the root must now refuse writes, even root's
        "if touch %s/.rw-probe 2>/dev/null; then echo 'root file system still writable' >&2; exit 3; fi" % root,
        'exec "$@"'])
    argv = ["unshare", "--mount", "--", "/bin/sh", "-c", inner, "sh"] + \
        chroot_cmd(root, cfg, cfg["Entrypoint"] + (cfg.get("Cmd") or []), env)
    return subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)


def serve(root, cfg, work, name, extra_ports, body):
    """Runs the image's entry point from its file system (read-only root), waits for its
    HEALTHCHECK, runs body(ports, volume), then SIGTERM: exit 0 expected."""
    uid, gid = (int(x) for x in cfg["User"].split(":"))
    volume = os.path.join(work, name + "-volume")
    os.mkdir(volume)
    os.chown(volume, uid, gid)
    ports = {k: sc.free_port() for k in ["LISTEN", "HEALTH_LISTEN", "METRICS_LISTEN"] + extra_ports}
    env = image_env(cfg, {"R5_" + k: "127.0.0.1:%d" % p for k, p in ports.items()})
    logpath = os.path.join(work, name + ".log")
    with open(logpath, "w") as logf:
        t0 = time.monotonic()
        server = start_server(root, cfg, env, volume, logf)
        try:
            health = list(cfg["Healthcheck"]["Test"][1:])
            health[health.index("--server") + 1] = "127.0.0.1:%d" % ports["HEALTH_LISTEN"]
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, "recon5td exited %s:\n%s" % (
                    server.returncode, open(logpath).read()[-3000:])
                h = subprocess.run(chroot_cmd(root, cfg, health, env), capture_output=True, text=True)
                if h.returncode == 0:
                    break
                assert time.monotonic() < deadline, "HEALTHCHECK never passed: %s %s" % (h.stdout, h.stderr)
                time.sleep(0.5)
            log("%s: recon5td from the image's entry point, read-only root: healthy after %.1f s "
                "(the image's HEALTHCHECK command: %s)" % (name, time.monotonic() - t0, h.stdout.strip()))
            body(ports, volume)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
            try:
                rc = server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                rc = server.wait()
    text = open(logpath).read()
    assert rc == 0, "recon5td exit %s after SIGTERM:\n%s" % (rc, text[-3000:])
    assert "Read-only file system" not in text, text[-3000:]
    log("%s: SIGTERM, recon5td exited 0" % name)


def check_dicom(out):
    files = sorted(glob.glob(os.path.join(out, "*.dcm")))
    assert len(files) == 2, files
    import pydicom
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and ds.Modality == "MR", f
        assert ds.pixel_array.shape == (int(ds.Rows), int(ds.Columns)), f
    log("recon5t send --format dicom to the image's server: %d files, pydicom reads all (%dx%d)" %
        (len(files), ds.Rows, ds.Columns))
    if not shutil.which("dciodvfy"):
        log("SKIP part: dciodvfy (dicom3tools) not installed")
        return
    for f in files:
        r = subprocess.run(["dciodvfy", f], capture_output=True, text=True)
        errors = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")]
        assert not errors, (f, errors)
    log("dciodvfy: no errors on %d files" % len(files))


def main():
    if os.environ.get("R5_SKIP_CONTAINER", "0") == "1":
        sc.skip("R5_SKIP_CONTAINER=1")
    for tool in ("podman", "mmdebstrap", "unshare", "chroot"):
        if not shutil.which(tool):
            sc.skip("%s not installed (scripts/install-deps.sh installs podman and mmdebstrap)" % tool)
    if os.geteuid() != 0:
        sc.skip("the image's file system is run in a chroot with a read-only bind mount: needs root")
    sc.require_binaries()
    os.makedirs(CACHE, exist_ok=True)
    t_start = time.monotonic()
    with sc.tempdir() as work:
        base = base_image(work)
        build(base)
        cfg, size_mb = inspect()
        t0 = time.monotonic()
        root = export(work)
        log("podman create + export + unpack: %.0f s" % (time.monotonic() - t0))

        r = subprocess.run(["chroot", root, "/usr/bin/ldd", "/opt/recon5t/bin/recon5td",
                            "/opt/recon5t/bin/recon5t"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        missing = [line for line in r.stdout.splitlines() if "not found" in line]
        assert not missing, "libraries missing in the image: %s" % missing
        log("ldd in the image: %d libraries, none missing" % r.stdout.count("=>"))

        scan = sc.make_phantom(work, matrix="64", coils=4)

        def grpc_dicom(ports, volume):
            out = os.path.join(work, "dicom")
            t0 = time.monotonic()
            sc.run([sc.RECON5T, "send", scan, "--server", "127.0.0.1:%d" % ports["LISTEN"], "--out", out,
                    "--format", "dicom", "--output", "magnitude", "--output", "phase", "--quiet"])
            log("send + recon + DICOM back: %.1f s" % (time.monotonic() - t0))
            check_dicom(out)
            keep = os.environ.get("R5_CONTAINER_KEEP_DICOM")
            if keep:
                os.makedirs(keep, exist_ok=True)
                for f in glob.glob(os.path.join(out, "*.dcm")):
                    shutil.copy(f, keep)
            written = sorted(os.path.relpath(os.path.join(d, f), volume)
                             for d, _, fs in os.walk(volume) for f in fs)
            log("written to the volume: %s" % (written[:6] or "nothing"))

        serve(root, cfg, work, "server", [], grpc_dicom)
        shutil.rmtree(root)

        # the OpenRecon-style image: the label from the pipeline tables, the MRD listener
        label = subprocess.run([sc.RECON5T, "openrecon-label", "--base64"], capture_output=True,
                               text=True, check=True).stdout.strip()
        build(base, ["--target", "openrecon", "--build-arg", "OPENRECON_LABEL=" + label], OPENRECON)
        ocfg = json.loads(podman("image", "inspect", OPENRECON).stdout)[0]
        labels = ocfg.get("Labels") or ocfg["Config"].get("Labels") or {}
        value = labels.get(OPENRECON_KEY, "")
        meta = json.loads(base64.b64decode(value))
        assert value == label and meta["reconstruction"]["port"] == 9002, (meta.get("reconstruction"),)
        assert 0 < len(meta["parameters"]) <= 14, len(meta["parameters"])
        log("openrecon image: label %s = recon5t openrecon-label (%d parameters, %d bytes base64)" %
            (OPENRECON_KEY, len(meta["parameters"]), len(value)))
        oc = ocfg["Config"]
        oc["Healthcheck"] = oc.get("Healthcheck") or ocfg.get("Healthcheck") or {}
        assert "9002/tcp" in (oc.get("ExposedPorts") or {}), oc.get("ExposedPorts")
        root = export(work, OPENRECON)
        conf = open(os.path.join(root, "etc/recon5t/recon5td.conf")).read()
        assert "mrd_listen = 0.0.0.0:9002" in conf and "mrd_insecure = 1" in conf and "mrd_allow = " in conf

        def mrd_images(ports, volume):
            out = os.path.join(work, "mrd")
            t0 = time.monotonic()
            sc.run([sc.RECON5T, "send", scan, "--protocol", "mrd", "--server",
                    "127.0.0.1:%d" % ports["MRD_LISTEN"], "--out", out, "--quiet"])
            got = os.listdir(out)
            assert got, "no images back over MRD"
            log("recon5t send --protocol mrd to the openrecon image: %s in %.1f s" % (got, time.monotonic() - t0))

        serve(root, oc, work, "openrecon", ["MRD_LISTEN"], mrd_images)
    log("PASS: CPU image %.0f MB; whole test %.0f s" % (size_mb, time.monotonic() - t_start))


if __name__ == "__main__":
    main()
