/* Pipeline cs on a 3D frame with the readout decoupled (issue 13, item 4): k-space already
 * inverse-transformed along x makes every readout position x an independent 2D ky-kz problem
 *     min_x  1/2 |E_x v - y_x|^2 + lambda R_yz(v)
 * with E_x the SENSE encoding of that position's maps (FFT over y, z) and the regularisers over
 * y, z only. The positions are solved as a batch, in slabs of consecutive x positions: per slab
 * its k-space [xs, y, z, C] and maps [xs, y, z, C, M] are gathered (strided copies, x is the
 * fastest dim; one slab of the whole readout uses the frame's own arrays), its operator, E^H y
 * and solve made (r5_cs_solve, cs.c), the image scattered back.
 * A slab's working set, not the volume's, bounds the solver's memory (memory_estimate.c), one
 * iteration of one slab bounds the time between two stop checks, and progress moves per slab.
 * The weights are the volume's: a first pass over the slabs finds max |E^H y| of the whole volume
 * and every slab passes it as the weights' peak. Everything goes through the context's array
 * ops, so the same code runs on every back end.
 *
 * Not the default (cs.decouple=0 is), by measurement with cs.c's defaults (auto weights, 8 spins
 * over Haar + Daubechies-4), Poisson R=4, CPU: 3D Shepp-Logan 48x48x32 NRMSE 0.1390 decoupled vs
 * 0.1372 with 3D regularisers (SSIM 0.834 vs 0.842); vessel-wall 128x128x64 0.0138 vs 0.0131
 * (inside the wall mask 0.0097 vs 0.0090). Decoupled is no slower (bench_cs3d 96x96x64, 12
 * coils, 50 iterations: 10.2 vs 10.0 s; the vessel wall's cs stage, best of 2 on a loaded
 * machine: 10.0 vs 12.4 s), smaller (peak RSS 326 vs 354 MB on the vessel wall: the solver's
 * vectors per slab), and bounds the time between stop checks by one slab's iteration, which a
 * whole 3D volume's wavelet prox does not. */
#ifndef R5_PIPELINE_CS_SLAB_H
#define R5_PIPELINE_CS_SLAB_H

#include "pipeline.h"

/* Coil-image values (x positions x ny x nz x coils) of an auto slab where the context computes:
 * on the host about half a stop-check chunk (one iteration of a slab, ~5 passes over them, stays
 * under ~0.5 s on 2 cores; 8..32 positions for 128..256 x 64..128 x 8 coils); on a device 512 Mi
 * values (4 GiB, so the 384 x 384 x 256 x 12-coil volume is one slab). */
#define R5_CS_SLAB_HOST_VALUES (2L << 20)
#define R5_CS_SLAB_DEVICE_VALUES (512L << 20)

/* Non-zero when pipeline cs solves a frame of k-space dims kdims decoupled: p->cs.decouple and a
 * 3D frame (nz > 1; a 2D frame keeps its 2D regularisers over x, y). */
int r5_cs_decoupled(const r5_recon_params *p, const long kdims[R5_DIMS]);

/* x positions per slab for a frame of k-space dims kdims ([x, y, z, coils]) computed where
 * `where` says: p->cs.slab (at most nx) or, for 0, the auto width above (at least 1). */
long r5_cs_slab_width(const r5_recon_params *p, r5_residency where, const long kdims[R5_DIMS]);

/* Non-zero when a decoupled frame of k-space dims kdims ([x, y, z, coils]) with n_maps map sets
 * is streamed on ctx: ctx computes on a device, and p->cs.stream is 1, or -1 and the frame's
 * k-space and maps together take more than half of what ctx can still allocate
 * (r5_ctx_mem_info). Streamed, the k-space (inverse-transformed along x on the device a group of
 * coils at a time) and the ESPIRiT maps (made on the device a slab of readout positions at a
 * time, each downloaded) stay in host memory, and r5_cs_slabs_solve uploads one slab of each at
 * a time: the device holds a slab's working set, the mask and the image, not the volume. */
int r5_cs_streamed(r5_ctx *ctx, const r5_recon_params *p, const long kdims[R5_DIMS], int n_maps);

/* Where a decoupled solve spent its time (both passes; each stage bracketed by the context's
 * sync, so only asked for by benchmarks) and how it was cut. */
typedef struct r5_cs_slab_stats {
	long n_slabs, width;
	float peak; /* the volume's max |E^H y| */
	double gather_s, operator_s, rhs_s, solve_s, residual_s, scatter_s;
} r5_cs_slab_stats;

/* How r5_cs_slabs_solve reports and weighs: progress as stage "cs" from lo to hi (hi at the last
 * slab; NULL: never stops), the k-space noise std for the weights' auto rule (0: unknown; as
 * r5_cs_solve_opts), stats (NULL: none) for the stage times. */
typedef struct r5_cs_slabs_opts {
	const r5_progress *progress;
	double lo, hi;
	float noise_sigma;
	r5_cs_slab_stats *stats;
} r5_cs_slabs_opts;

/* Solves one frame decoupled: kspace ([x, y, z, C], hybrid x-ky-kz) and maps ([x, y, z, C, M]),
 * each where ctx computes or (streamed: r5_cs_streamed) on the host, mask (work, [1, y, z]); image (work, [x, y, z, 1, 1], strided views allowed)
 * receives the image (root-sum-of-squares over two map sets). A stop check before every slab and
 * after every iteration; the stop status is returned. *residual = |y - E x| / |y| over the whole
 * frame. */
r5_status r5_cs_slabs_solve(r5_ctx *ctx, const r5_recon_params *p, const r5_array *maps, const r5_array *mask,
			    const r5_array *kspace, r5_array *image, const r5_cs_slabs_opts *o, double *residual);

#endif
