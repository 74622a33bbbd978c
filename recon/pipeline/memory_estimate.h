/* How much host memory a reconstruction will hold, so that the server can reserve it from its
 * memory budget when a scan is complete and before the job runs (issue 11, item 6).
 *
 * The estimate replays r5_recon_run's allocations on a ledger: every array the pipeline
 * allocates (with its size from the scan's dimensions and the parameters) is added when it is
 * made and taken off when it is freed, in the order the code does it, and the ledger's peak is
 * the answer. FFT centring ramps, which the context caches per shape until it is destroyed, are
 * counted once per shape and never taken off. Sizes that depend on the data (the number of
 * ESPIRiT kernels kept, the virtual coils an energy criterion keeps) take their upper bound.
 * Where an allocation lives changes with the pipelines (recon/pipeline, recon/calib,
 * recon/linop, recon/solve): change memory_estimate.c with them; `recon5t recon
 * --memory-report` and tests/integration/test_memory_estimate.sh compare it with the measured
 * peak. */
#ifndef R5_PIPELINE_MEMORY_ESTIMATE_H
#define R5_PIPELINE_MEMORY_ESTIMATE_H

#include "pipeline.h"

/* Peak host memory (bytes) that r5_recon_run(ctx, scan, params, ...) holds at once on a CPU
 * context: the scan itself (k-space, masks, noise) plus everything the chosen pipeline
 * allocates (prewhitened/compressed copies, calibration data, ESPIRiT tables and per-pixel
 * workspace, coil maps, solver vectors, GRAPPA kernels in image space, g-factor, images out).
 * Resolves pipeline "auto" as r5_recon_run does. Never under the measured peak; within ~2x.
 * params NULL: r5_recon_defaults. R5_EINVAL without k-space, R5_ENOTSUP for a pipeline that is
 * not built in. A CUDA context holds the work arrays on the device instead (see
 * memory_estimate.c); this figure is the CPU one. */
r5_status r5_recon_memory_estimate(const r5_scan *scan, const r5_recon_params *params, double *bytes);

#endif
