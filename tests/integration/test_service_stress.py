"""Short version of bench/bench_stress.py for the suite: two mutating clients send 600 broken
streams (300 under the sanitizer build) beside a client sending a valid scan; recon5td must not
crash, must answer every broken stream with a status that names bad input (never INTERNAL or
UNKNOWN), must answer every valid scan with images, must still be serving, and its resident
memory must come back to within 30 MB of the baseline. Bounded to 120 s."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import svc_common as sc  # noqa: E402
import bench_stress  # noqa: E402


def main():
    sc.require_binaries()
    result = bench_stress.run(300 if sc.SANITIZE else 600, 120, seed=7)
    problems = []
    if not result["alive"]:
        problems.append("recon5td died or stopped serving")
    if result["exit"] != 0:
        problems.append("recon5td exited %s on SIGTERM" % result["exit"])
    if result["suspicious"]:
        problems.append("INTERNAL/UNKNOWN answers (a bug, not bad input): " + "; ".join(result["suspicious"][:3]))
    if result["valid"]["failed"] or not result["valid"]["ok"]:
        problems.append("valid scans: %(ok)d OK, %(failed)d failed" % result["valid"])
    if not sc.SANITIZE and result["after"] - result["baseline"] > 30 * 1024:
        problems.append("RSS after %.1f MB, baseline %.1f MB" % (result["after"] / 1024, result["baseline"] / 1024))
    if problems:
        print("FAIL: " + "; ".join(problems))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
