#!/usr/bin/python3
"""recon5td benchmark: k-space ingest throughput over loopback (MB/s) and end-to-end latency from
the last acquisition sent to the last image received, per pipeline, printed as a table.

usage: R5_BIN=build /usr/bin/python3 bench/bench_service.py [--matrix 128] [--coils 8] [--runs 3]
       [--pipelines cartesian,sense,grappa] [--backend cpu|gpu|auto] [--batch 32]

Ingest MB/s = k-space bytes / (time from the first message to the End leaving the client),
measured with the python grpcio client (so a lower bound for the C client). Pipelines the
server refuses for this scan are listed as such."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import svc_common as sc  # noqa: E402


def one_run(server, pb, xml, records, pipeline, batch, params):
    t = {"first": None, "end": None, "last_image": None}
    nbytes = sum(len(r["data"]) * 4 for r in records)

    def messages():
        for m in sc.scan_messages(pb, xml, records, batch=batch, pipeline=pipeline, params=params):
            if t["first"] is None:
                t["first"] = time.perf_counter()
            if m.WhichOneof("kind") == "end":
                t["end"] = time.perf_counter()
            yield m

    stream = server.channel.stream_stream(sc.RECONSTRUCT, request_serializer=pb.ScanMessage.SerializeToString,
                                          response_deserializer=pb.ReconEvent.FromString)
    n_images, completed = 0, None
    try:
        for e in stream(messages(), timeout=600):
            kind = e.WhichOneof("kind")
            if kind == "image":
                n_images += 1
                t["last_image"] = time.perf_counter()
            elif kind == "completed":
                completed = e.completed
    except sc.grpc.RpcError as err:
        return None, "%s: %s" % (err.code().name, err.details())
    ingest_s = t["end"] - t["first"]
    return {"mb_s": nbytes / 1e6 / ingest_s, "ingest_s": ingest_s, "latency_s": t["last_image"] - t["end"],
            "images": n_images, "mb": nbytes / 1e6,
            "server_ingest_s": completed.ingest_seconds if completed else 0}, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--matrix", default="128")
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pipelines", default="cartesian,sense,grappa")
    ap.add_argument("--backend", default="cpu")
    args = ap.parse_args()
    sc.require_binaries()
    with sc.tempdir() as work:
        pb, hpb = sc.load_protos(work)
        scan = sc.make_phantom(work, matrix=args.matrix, coils=args.coils)
        xml, records = sc.read_scan(scan)
        server = sc.Server(work, pb, hpb, ["--workers", "1", "--backend", args.backend,
                                           "--memory-budget-mb", "16384", "--max-message-mb", "256"])
        try:
            print("scan: matrix %s, %d coils, %d acquisitions, %.1f MB k-space; batch %d; backend %s" %
                  (args.matrix, args.coils, len(records), sum(len(r["data"]) * 4 for r in records) / 1e6,
                   args.batch, args.backend))
            print("%-10s %5s %12s %12s %18s %8s" % ("pipeline", "runs", "ingest MB/s", "ingest s",
                                                   "last acq→image s", "images"))
            for pipeline in args.pipelines.split(","):
                rows, error = [], None
                for _ in range(args.runs):
                    row, error = one_run(server, pb, xml, records, pipeline, args.batch, {})
                    if error:
                        break
                    rows.append(row)
                if error:
                    print("%-10s %5s %s" % (pipeline, "-", error[:90]))
                    continue
                med = lambda k: sorted(r[k] for r in rows)[len(rows) // 2]  # noqa: E731
                print("%-10s %5d %12.1f %12.3f %18.3f %8d" % (pipeline, len(rows), med("mb_s"), med("ingest_s"),
                                                               med("latency_s"), rows[0]["images"]))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
