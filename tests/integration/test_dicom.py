"""DICOM output end to end: recon5t phantom -> recon --dicom, for a 2D axial, a 2D double-oblique
(20°, 15°) and a 3D oblique phantom. Checks: dciodvfy reports no error on any instance,
dcentvfy finds each case's series consistent, pydicom reads every file, the identity tags agree
across a series, the patient coordinates of chosen voxels computed from IPP/IOP/PixelSpacing equal
the physical coordinates from the phantom's ISMRMRD acquisition headers (position = slice/slab
centre, voxel i at (i - N/2) * FOV/N) within 0.1 voxel, slices sort by position in partition
order, and the stored pixels match the phantom's ground truth in orientation (no flip or
transpose). Enhanced MR (--dicom-enhanced) on a 3D oblique and a 2D oblique phantom: dciodvfy,
dcentvfy with the classic series, and per-frame positions and pixels equal to the classic ones. SKIP (77) when recon5t or the DICOM tools are absent."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

BIN = os.environ.get("R5_BIN", "")
R5 = os.path.join(BIN, "service", "recon5t")


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)


if not os.access(R5, os.X_OK):
    skip("recon5t not built (%s)" % R5)
for tool in ("dciodvfy", "dcentvfy"):
    if not shutil.which(tool):
        skip(tool + " (dicom3tools) not installed")
try:
    import h5py
    import numpy as np
    import pydicom
except ImportError as e:
    skip("python module missing: %s" % e)

failures = []


def check(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def run(*args):
    r = subprocess.run([R5] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("recon5t %s failed: %s" % (" ".join(args), r.stderr[-2000:]))


def phantom_geometry(path):
    """Slice/slab centre, directions, recon matrix and FOV from the phantom's ISMRMRD file."""
    with h5py.File(path, "r") as f:
        head = f["dataset/data"][0]["head"]
        xml = f["dataset/xml"][0]
        truth = np.array(f["dataset/ground_truth/data"][0], dtype=np.float64)
    root = ET.fromstring(xml.decode() if isinstance(xml, bytes) else xml)
    ns = {"m": "http://www.ismrm.org/ISMRMRD"}
    rs = root.find("m:encoding/m:reconSpace", ns)
    matrix = [int(rs.find("m:matrixSize/m:" + a, ns).text) for a in "xyz"]
    fov = [float(rs.find("m:fieldOfView_mm/m:" + a, ns).text) for a in "xyz"]
    g = {k: np.array(head[k], dtype=np.float64) for k in ("position", "read_dir", "phase_dir", "slice_dir")}
    return g, matrix, fov, truth


def voxel_from_dicom(ds, i, j):
    """PS3.3 C.7.6.2.1.1: column i, row j -> patient coordinates (mm)."""
    ipp = np.array(ds.ImagePositionPatient, dtype=np.float64)
    iop = np.array(ds.ImageOrientationPatient, dtype=np.float64)
    dr, dc = (float(v) for v in ds.PixelSpacing)  # row spacing, column spacing
    return ipp + iop[:3] * dc * i + iop[3:] * dr * j


def check_case(name, phantom_args):
    work = tempfile.mkdtemp(prefix="r5-dicom-")
    try:
        h5 = os.path.join(work, "p.h5")
        out = os.path.join(work, "dicom")
        run("phantom", *phantom_args, "--out", h5)
        run("recon", h5, "--dicom", out, "--backend", "cpu", "--quiet")
        files = sorted(glob.glob(os.path.join(out, "*", "*.dcm")))
        check(len(files) > 0, "%s: %d DICOM files written" % (name, len(files)))
        errors = []
        for f in files:
            r = subprocess.run(["dciodvfy", f], capture_output=True, text=True)
            errors += [f + ": " + l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]
        check(not errors, "%s: dciodvfy no errors on %d instances %s" % (name, len(files), errors[:3]))
        r = subprocess.run(["dcentvfy"] + files, capture_output=True, text=True)
        bad = [l for l in (r.stdout + r.stderr).splitlines() if "Error" in l]
        check(r.returncode == 0 and not bad, "%s: dcentvfy consistent %s" % (name, bad[:3]))
        sets = [pydicom.dcmread(f) for f in files]
        for ds in sets:
            ds.pixel_array  # decodes
        check(True, "%s: pydicom read %d files with pixels" % (name, len(sets)))
        check_identity(name, sets)
        check_geometry(name, h5, [d for d, f in zip(sets, files) if os.sep + "magnitude" + os.sep in f])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_identity(name, sets):
    same = all(d.StudyInstanceUID == sets[0].StudyInstanceUID and
               d.FrameOfReferenceUID == sets[0].FrameOfReferenceUID for d in sets)
    check(same, "%s: one study and frame of reference" % name)
    by_series = {}
    for d in sets:
        by_series.setdefault(d.SeriesInstanceUID, []).append(d)
    numbers = {int(s[0].SeriesNumber) for s in by_series.values()}
    check(len(numbers) == len(by_series), "%s: %d series, distinct SeriesNumber" % (name, len(by_series)))
    d = sets[0]
    ok = (d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and d.Modality == "MR" and
          d.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and d.BitsStored == 16 and
          "recon5t" in str(d.SoftwareVersions) and "pipeline" in d.DerivationDescription and
          float(d.MagneticFieldStrength) > 0 and str(d.SOPInstanceUID).startswith("2.25."))
    check(ok, "%s: SOP class, transfer syntax, software, derivation, field, UID form" % name)
    uids = {d.SOPInstanceUID for d in sets}
    check(len(uids) == len(sets), "%s: SOP instance UIDs unique" % name)


def check_geometry(name, h5, mags):
    g, matrix, fov, truth = phantom_geometry(h5)
    nx, ny, nz = matrix
    d = [fov[0] / nx, fov[1] / ny, fov[2] / nz if nz > 1 else 0.0]
    mags.sort(key=lambda s: int(s.InstanceNumber))
    worst = 0.0
    probes = [(0, 0), (nx - 1, 0), (0, ny - 1), (nx - 1, ny - 1), (nx // 2, ny // 2), (nx // 3, 2 * ny // 3)]
    for k, ds in enumerate(mags):
        for i, j in probes:
            truth_mm = (g["position"] + (i - nx // 2) * d[0] * g["read_dir"] + (j - ny // 2) * d[1] * g["phase_dir"] +
                        ((k - nz // 2) * d[2] * g["slice_dir"] if nz > 1 else 0))
            worst = max(worst, float(np.linalg.norm(voxel_from_dicom(ds, i, j) - truth_mm)))
    voxel = min(d[0], d[1], d[2] if nz > 1 else d[0])
    check(worst < 0.1 * voxel, "%s: voxel positions from IPP/IOP/PixelSpacing within %.2e mm = %.2e voxel (limit 0.1)"
          % (name, worst, worst / voxel))
    normal = np.cross(np.array(mags[0].ImageOrientationPatient[:3], float), np.array(mags[0].ImageOrientationPatient[3:], float))
    order = sorted(range(len(mags)), key=lambda m: float(np.dot(np.array(mags[m].ImagePositionPatient, float), normal)))
    want = list(range(len(mags))) if np.dot(normal, g["slice_dir"]) > 0 else list(reversed(range(len(mags))))
    check(order == want, "%s: slices sort by position in partition order" % name)
    # orientation of the pixels: the stored image correlates best with the truth as is
    image = np.array([m.pixel_array for m in mags], dtype=np.float64)
    ref = truth.reshape(image.shape)
    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-30))
    direct = corr(image, ref)
    others = [corr(image, ref[:, ::-1, :]), corr(image, ref[:, :, ::-1])]
    if image.shape[0] > 1:
        others.append(corr(image, ref[::-1]))
    if image.shape[1] == image.shape[2]:
        others.append(corr(image, ref.transpose(0, 2, 1)))
    check(direct > 0.9 and direct > max(others) + 0.05,
          "%s: pixels match ground truth orientation (r=%.3f, flipped/transposed max %.3f)" % (name, direct, max(others)))


def check_enhanced_case(name, phantom_args, recon_args):
    """--dicom-enhanced (Enhanced MR Image Storage, one multi-frame instance per volume) next to
    --dicom: dciodvfy without errors, dcentvfy consistent with the classic series, pydicom reads
    it, one frame per partition/slice, each frame's ImagePositionPatient (Plane Position, per
    frame) and pixels equal the classic instance's of the same partition, shared orientation and
    spacing equal the classic ones, voxel positions match the phantom's geometry."""
    work = tempfile.mkdtemp(prefix="r5-dicom-enh-")
    try:
        h5 = os.path.join(work, "p.h5")
        classic_dir, enhanced_dir = os.path.join(work, "classic"), os.path.join(work, "enhanced")
        run("phantom", *phantom_args, "--out", h5)
        run("recon", h5, "--dicom", classic_dir, "--dicom-enhanced", enhanced_dir, "--backend", "cpu", "--quiet",
            *recon_args)
        files = sorted(glob.glob(os.path.join(enhanced_dir, "*", "*.dcm")))
        classic_files = sorted(glob.glob(os.path.join(classic_dir, "*", "*.dcm")))
        kinds = sorted({os.path.basename(os.path.dirname(f)) for f in classic_files})
        check(len(files) == len(kinds), "%s enhanced: %d files for kinds %s" % (name, len(files), kinds))
        errors, warnings = [], []
        for f in files:
            r = subprocess.run(["dciodvfy", f], capture_output=True, text=True)
            lines = (r.stdout + r.stderr).splitlines()
            errors += [f + ": " + l for l in lines if l.startswith("Error")]
            warnings += [l for l in lines if l.startswith("Warning")]
        check(not errors, "%s enhanced: dciodvfy no errors on %d instances (%d warnings %s) %s"
              % (name, len(files), len(warnings), warnings[:3], errors[:3]))
        r = subprocess.run(["dcentvfy"] + classic_files + files, capture_output=True, text=True)
        bad = [l for l in (r.stdout + r.stderr).splitlines() if "Error" in l]
        check(r.returncode == 0 and not bad, "%s enhanced: dcentvfy consistent with the classic series %s" % (name, bad[:3]))
        g, matrix, fov, truth = phantom_geometry(h5)
        n_frames = matrix[2] if matrix[2] > 1 else 1
        for kind in kinds:
            en = pydicom.dcmread(os.path.join(enhanced_dir, kind, "MF_00001.dcm"))
            cl = sorted((pydicom.dcmread(f) for f in glob.glob(os.path.join(classic_dir, kind, "*.dcm"))),
                        key=lambda d: int(d.InstanceNumber))
            pixels = en.pixel_array.reshape(int(en.NumberOfFrames), int(en.Rows), int(en.Columns))
            check(en.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.1" and int(en.NumberOfFrames) == n_frames == len(cl),
                  "%s enhanced %s: SOP class, %s frames (want %d)" % (name, kind, en.NumberOfFrames, n_frames))
            check(en.StudyInstanceUID == cl[0].StudyInstanceUID and en.FrameOfReferenceUID == cl[0].FrameOfReferenceUID
                  and en.SeriesInstanceUID != cl[0].SeriesInstanceUID,
                  "%s enhanced %s: classic study and frame of reference, own series" % (name, kind))
            shared = en.SharedFunctionalGroupsSequence[0]
            iop = shared.PlaneOrientationSequence[0].ImageOrientationPatient
            spacing = shared.PixelMeasuresSequence[0].PixelSpacing
            same_plane = all(list(iop) == list(c.ImageOrientationPatient) and list(spacing) == list(c.PixelSpacing)
                             for c in cl)
            frames = en.PerFrameFunctionalGroupsSequence
            worst_ipp = max(float(np.abs(np.array(fg.PlanePositionSequence[0].ImagePositionPatient, float) -
                                         np.array(c.ImagePositionPatient, float)).max()) for fg, c in zip(frames, cl))
            same_text = all([str(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient] ==
                            [str(v) for v in c.ImagePositionPatient] for fg, c in zip(frames, cl))
            check(len(frames) == n_frames and same_text and worst_ipp == 0.0 and same_plane,
                  "%s enhanced %s: per-frame IPP equals the classic IPP of the same partition (max diff %.1e mm), "
                  "shared IOP/PixelSpacing equal" % (name, kind, worst_ipp))
            same_pixels = all(np.array_equal(pixels[k], c.pixel_array) for k, c in enumerate(cl))
            check(same_pixels, "%s enhanced %s: frames' pixels equal the classic instances'" % (name, kind))
        nx, ny, nz = matrix
        d = [fov[0] / nx, fov[1] / ny, fov[2] / nz if nz > 1 else 0.0]
        en = pydicom.dcmread(os.path.join(enhanced_dir, "magnitude", "MF_00001.dcm"))
        iop = np.array(en.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient, float)
        dr, dc = (float(v) for v in en.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing)
        worst = 0.0
        for k, fg in enumerate(en.PerFrameFunctionalGroupsSequence):
            ipp = np.array(fg.PlanePositionSequence[0].ImagePositionPatient, float)
            for i, j in [(0, 0), (nx - 1, ny - 1), (nx // 3, 2 * ny // 3)]:
                truth_mm = (g["position"] + (i - nx // 2) * d[0] * g["read_dir"] + (j - ny // 2) * d[1] * g["phase_dir"] +
                            ((k - nz // 2) * d[2] * g["slice_dir"] if nz > 1 else 0))
                worst = max(worst, float(np.linalg.norm(ipp + iop[:3] * dc * i + iop[3:] * dr * j - truth_mm)))
        voxel = min(d[0], d[1], d[2] if nz > 1 else d[0])
        check(worst < 0.1 * voxel, "%s enhanced: voxel positions within %.2e voxel (limit 0.1)" % (name, worst / voxel))
    finally:
        shutil.rmtree(work, ignore_errors=True)


check_case("2D axial", ["--kind", "shepp-logan", "--matrix", "64,48", "--fov", "240,180,5", "--coils", "4"])
check_case("2D double-oblique 20,15", ["--kind", "shepp-logan", "--matrix", "64", "--coils", "4", "--oblique", "20,15"])
check_case("3D oblique 20,15", ["--kind", "shepp-logan-3d", "--matrix", "32,32,16", "--fov", "192,192,64", "--coils", "4",
                                "--oblique", "20,15"])
check_enhanced_case("3D oblique 20,15", ["--kind", "shepp-logan-3d", "--matrix", "64,64,16", "--coils", "8",
                                         "--oblique", "20,15"], ["--combine", "adaptive"])
check_enhanced_case("2D double-oblique 20,15", ["--kind", "shepp-logan", "--matrix", "64", "--coils", "4",
                                                "--oblique", "20,15"], [])
print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
