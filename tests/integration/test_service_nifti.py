"""FORMAT_NIFTI through recon5td: `recon5t send --format nifti` gets one Image event with the
.nii.gz of the magnitude series and its BIDS sidecar, saved as magnitude_0001.nii.gz + .json;
nibabel reads it, its affine and voxels equal those of offline `recon5t recon --nifti` of the same
file (double-oblique 20°,15° phantom), the sidecar carries no patient name, ID or birth date;
Capabilities lists FORMAT_NIFTI; a phase output with FORMAT_NIFTI is refused with a message.
SKIP (77) when the binaries, grpcio or nibabel are absent."""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

try:
    import nibabel
    import numpy as np
except ImportError as e:
    sc.skip("python module missing: %s (Debian python3-nibabel)" % e)


def main():
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = os.path.join(work, "p.h5")
        sc.run([sc.RECON5T, "phantom", "--out", scan, "--matrix", "64", "--coils", "4", "--oblique", "20,15"])
        sc.run([sc.RECON5T, "recon", scan, "--quiet", "--nifti", os.path.join(work, "offline")])
        server = sc.Server(work, pb, hpb)
        try:
            caps = server.capabilities()
            assert pb.FORMAT_NIFTI in caps.formats, caps
            out = os.path.join(work, "sent")
            sc.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out, "--format", "nifti",
                    "--quiet"])
            files = sorted(glob.glob(os.path.join(out, "*.nii.gz")))
            assert files == [os.path.join(out, "magnitude_0001.nii.gz")], os.listdir(out)
            sent, offline = nibabel.load(files[0]), nibabel.load(os.path.join(work, "offline", "magnitude.nii.gz"))
            affine_diff = np.abs(sent.affine - offline.affine).max()
            assert affine_diff < 1e-4, (sent.affine, offline.affine)
            a, b = np.asarray(sent.dataobj), np.asarray(offline.dataobj)
            rel = np.linalg.norm(a - b) / np.linalg.norm(b)
            assert a.shape == b.shape and rel < 1e-5, (a.shape, b.shape, rel)
            print("PASS: send --format nifti = offline recon --nifti (affine %.1e mm, relative error %.1e)"
                  % (affine_diff, rel))
            side_text = open(os.path.join(out, "magnitude_0001.json")).read()
            side = json.loads(side_text)
            assert side["ReconstructionPipeline"] == "cartesian" and side["RepetitionTime"] < 1, side
            for phi in ("PHANTOM^SHEPP", "R5PHANTOM", "1974"):
                assert phi not in side_text, phi
            print("PASS: sidecar in BIDS units, no patient data")
            # provenance: the stream's SHA-256 (recon/io/bids.h InputStreamHash), the same for the
            # same scan sent again, another for another scan
            stream_hash = side.get("InputStreamHash", "")
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", stream_hash), side
            again = os.path.join(work, "sent-again")
            sc.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", again, "--format", "nifti",
                    "--quiet"])
            assert json.load(open(os.path.join(again, "magnitude_0001.json")))["InputStreamHash"] == stream_hash
            other_scan = os.path.join(work, "q.h5")
            sc.run([sc.RECON5T, "phantom", "--out", other_scan, "--matrix", "64", "--coils", "4", "--seed", "7",
                    "--noise", "0.01"])
            other = os.path.join(work, "sent-other")
            sc.run([sc.RECON5T, "send", other_scan, "--server", server.address, "--out", other, "--format",
                    "nifti", "--quiet"])
            other_hash = json.load(open(os.path.join(other, "magnitude_0001.json")))["InputStreamHash"]
            assert other_hash != stream_hash, other_hash
            print("PASS: InputStreamHash %s... the same when sent again, another for another scan"
                  % stream_hash[:19])
            import subprocess
            r = subprocess.run([sc.RECON5T, "send", scan, "--server", server.address, "--out", out + "-bad",
                                "--format", "nifti", "--output", "phase", "--quiet"], capture_output=True, text=True)
            assert r.returncode != 0 and "magnitude only" in r.stderr, (r.returncode, r.stderr)
            print("PASS: FORMAT_NIFTI with a phase output refused: " + r.stderr.strip().splitlines()[-1])
        finally:
            server.stop()
    print("OK")


main()
