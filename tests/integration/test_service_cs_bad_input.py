"""Bad compressed-sensing requests to recon5td: each is answered INVALID_ARGUMENT with a message
naming what is wrong, and the server serves the next scan — a good cs scan (2D phantom,
variable-density Poisson sampling at R = 4) sent after every case returns its images.

Cases: a weight negative (lambda_l1 -1, lambda_tv -0.5) or not finite (nan, inf), zero
iterations, an unknown regulariser, more virtual coils than the scan's channels, and a scan whose
sampling has no calibration region (uniform R = 3 without calibration lines) for cs, sense and
auto. Follows test_service_bad_input.py."""
import os
import re
import sys

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc_common as sc  # noqa: E402

FAILURES = []


def expect(name, result, code, pattern):
    events, got, details = result
    images = sum(1 for e in events if e.WhichOneof("kind") == "image")
    ok = got == code and re.search(pattern, details or "") is not None and images == 0
    print("%-34s %-20s %s" % (name, got.name, details))
    if not ok:
        FAILURES.append("%s: expected %s /%s/ and no image, got %s %r (%d images)" %
                        (name, code.name, pattern, got.name, details, images))


def good_cs_scan(server, pb, xml, records, after):
    events, code, details = server.reconstruct(
        sc.scan_messages(pb, xml, records, pipeline="cs", params={"iters": 10}, job_id="good-" + after), timeout=120)
    images = sc.image_arrays(events, pb)
    completed = [e.completed for e in events if e.WhichOneof("kind") == "completed"]
    ok = (code == grpc.StatusCode.OK and len(images) == 1 and images[0].shape == (1, 64, 64)
          and float(images[0].max()) > 0 and len(completed) == 1 and completed[0].pipeline == "cs")
    if not ok:
        FAILURES.append("after %s: good cs scan got %s %r, %d images" % (after, code.name, details, len(images)))


def main():
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        good = sc.make_phantom(work, name="vd.h5", matrix="64", coils=4,
                               extra=("--sampling", "poisson", "--accel", "4", "--calib", "16", "--noise", "0.002"))
        nocal = sc.make_phantom(work, name="nocal.h5", matrix="64", coils=4,
                                extra=("--sampling", "uniform", "--accel", "3", "--calib", "0"))
        xml, records = sc.read_scan(good)
        nocal_xml, nocal_records = sc.read_scan(nocal)
        server = sc.Server(work, pb, hpb, ["--workers", "1", "--memory-budget-mb", "512"])
        try:
            good_cs_scan(server, pb, xml, records, "start")
            run_cases(server, pb, xml, records, nocal_xml, nocal_records)
            if server.health() != hpb.HealthCheckResponse.SERVING:
                FAILURES.append("health is not SERVING after the cases")
        finally:
            rc = server.stop(expect_zero=False)
        if rc != 0:
            FAILURES.append("recon5td exited %d" % rc)
        if FAILURES:
            print("\n".join(["FAIL:"] + FAILURES))
            sys.exit(1)
        print("PASS")


def run_cases(server, pb, xml, records, nocal_xml, nocal_records):
    INVALID = grpc.StatusCode.INVALID_ARGUMENT
    bad_params = [
        ("lambda_l1 -1", {"lambda_l1": "-1"}, r"lambda_l1.*-1"),
        ("lambda_tv -0.5", {"reg": "tv", "lambda_tv": "-0.5"}, r"lambda_tv.*-0.5"),
        ("lambda_l1 nan", {"lambda_l1": "nan"}, r"lambda_l1.*not a finite"),
        ("lambda_tv inf", {"reg": "l1+tv", "lambda_tv": "inf"}, r"lambda_tv.*not a finite"),
        ("iters 0", {"iters": "0"}, r"iters.*0"),
        ("reg l2", {"reg": "l2"}, r"reg.*unknown value 'l2'"),
        ("coils_virtual 8 of 4", {"coils_virtual": "8"}, r"coils_virtual 8 exceeds the scan's 4 receive channels"),
    ]
    for name, params, pattern in bad_params:
        expect(name, server.reconstruct(sc.scan_messages(pb, xml, records, pipeline="cs", params=params, job_id=name),
                                        timeout=60), INVALID, pattern)
        good_cs_scan(server, pb, xml, records, name)
    for pipeline in ("cs", "sense", "auto"):
        name = "no calibration region, " + pipeline
        expect(name, server.reconstruct(sc.scan_messages(pb, nocal_xml, nocal_records, pipeline=pipeline,
                                                         job_id="nocal-" + pipeline), timeout=60),
               INVALID, r"no fully sampled calibration region.*1 ky line")
        good_cs_scan(server, pb, xml, records, name)


if __name__ == "__main__":
    main()
