"""recon5t openrecon-label: the OpenRecon vendor metadata against the label format's rules that
we know — JSON; general name/version; reconstruction with transfer protocol ISMRMRD, port, GPU
and memory needs; at most 14 parameters, ids ^[A-Za-z0-9]+$ and unique, types in
{int, double, string, boolean, choice}, defaults of their type, int/double defaults within
min..max, every choice default among its values; the pipeline first, as the choice `config`;
--base64 the base64 of the same JSON; --out writes it; --name/--version land in it; a bad
option is refused with a message. (That the server accepts every id with its default and every
choice value: unit.test_openrecon_params.)"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ.get("R5_BIN", ".")
RECON5T = os.path.join(BIN, "service", "recon5t")


def label(*args):
    r = subprocess.run([RECON5T, "openrecon-label", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "rc %d: %s" % (r.returncode, r.stderr)
    return r.stdout


def check(doc, name, version):
    g = doc["general"]
    assert g["name"]["en"] == name and g["version"] == version, g
    rec = doc["reconstruction"]
    assert rec["transfer_protocol"]["protocol"] == "ISMRMRD", rec
    assert rec["port"] == 9002
    for key in ("min_required_memory", "min_required_gpu_memory", "min_count_required_gpus",
                "min_count_required_cpu_cores"):
        assert isinstance(rec[key], int) and rec[key] >= 0, (key, rec.get(key))
    assert isinstance(rec["can_use_gpu"], bool)
    params = doc["parameters"]
    assert 1 <= len(params) <= 14, "%d parameters (OpenRecon allows 14)" % len(params)
    ids = [p["id"] for p in params]
    assert len(set(ids)) == len(ids), "ids repeat: %s" % ids
    assert params[0]["id"] == "config" and params[0]["type"] == "choice", params[0]
    for p in params:
        assert re.fullmatch(r"[A-Za-z0-9]+", p["id"]), p["id"]
        assert p["label"]["en"], p
        t, d = p["type"], p["default"]
        assert t in ("int", "double", "string", "boolean", "choice"), (p["id"], t)
        if t == "int":
            assert isinstance(d, int) and not isinstance(d, bool), (p["id"], d)
        elif t == "double":
            assert isinstance(d, (int, float)) and not isinstance(d, bool), (p["id"], d)
        elif t == "boolean":
            assert isinstance(d, bool), (p["id"], d)
        else:
            assert isinstance(d, str), (p["id"], d)
        if t in ("int", "double"):
            assert p["min"] <= d <= p["max"], (p["id"], p["min"], d, p["max"])
        if t == "choice":
            values = [v["id"] for v in p["values"]]
            assert values and d in values, (p["id"], d, values)
    pipelines = [v["id"] for v in params[0]["values"]]
    for name in ("auto", "cartesian", "sense", "grappa", "cs"):
        assert name in pipelines, pipelines
    return ids


def main():
    if not os.access(RECON5T, os.X_OK):
        print("SKIP: %s not built" % RECON5T)
        sys.exit(77)
    text = label()
    ids = check(json.loads(text), "recon5t", json.loads(text)["general"]["version"])
    print("label: %d parameters: %s" % (len(ids), ", ".join(ids)))
    text = label("--name", "recon5tTest", "--version", "9.8.7", "--gpu-memory-mb", "8192")
    doc = json.loads(text)
    check(doc, "recon5tTest", "9.8.7")
    assert doc["reconstruction"]["min_required_gpu_memory"] == 8192
    encoded = label("--name", "recon5tTest", "--version", "9.8.7", "--gpu-memory-mb", "8192", "--base64").strip()
    assert re.fullmatch(r"[A-Za-z0-9+/]+=*", encoded), "not base64"
    assert base64.b64decode(encoded, validate=True).decode() == text, "--base64 is not the JSON's base64"
    with tempfile.TemporaryDirectory() as w:
        out = os.path.join(w, "label.json")
        assert label("--out", out) == ""
        with open(out) as f:
            assert json.load(f) == json.loads(label())
    r = subprocess.run([RECON5T, "openrecon-label", "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unknown option --frobnicate" in r.stderr, r.stderr
    r = subprocess.run([RECON5T, "openrecon-label", "--memory-mb", "lots"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "--memory-mb" in r.stderr, r.stderr
    print("base64 round trip, --out, refusals: ok")


if __name__ == "__main__":
    main()
