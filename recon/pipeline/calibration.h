/* The calibration of a sense or cs reconstruction (ESPIRiT coil maps, after the prewhitening and
 * coil compression the run applies), computed from the centre of k-space alone, so that it can
 * run before the scan is complete: recon5td starts it on a copy of the calibration block as soon
 * as that block has streamed in, and hands the result to r5_recon_run_calibrated (pipeline.h)
 * when the scan's End arrives (issue 13, item 6).
 *
 * The block is the raw k-space (as the scan builder sorts it: neither prewhitened nor
 * compressed) of the centred W x W ky-kz window, all readout samples and channels, with W the
 * calibration width both steps use (calib_size, else 24: coil compression's covariance block
 * and ESPIRiT's cap on the ACS width). The chain from it:
 *     block -> prewhitened with the scan's noise (when prewhiten and a noise scan came)
 *           -> coil compressed (r5_coil_compress_to on the block: its matrices come from the same
 *              centre window as those of the whole k-space's compression, so the virtual coils
 *              are the same)
 *           -> cropped to ESPIRiT's ACS (the calibration region found in the mask, capped at W)
 *           -> r5_espirit_maps on the image grid.
 * r5_recon_run makes the maps of every one-frame sense/cs scan through this chain, with or
 * without a calibration computed ahead, so that the two give the same bits; scans of several
 * frames (slices, contrasts, ...) keep the per-slice maps from the frame's k-space (sense.c).
 *
 * A calibration computed ahead is used only when it is the one the run would make: the scan's
 * shape and the parameters that shape the chain are the same, the block's samples and the noise
 * scan are bit for bit those of the finished scan, the calibration region is the same, and the
 * input was not rescaled (r5_recon_run's large-data shift). Otherwise the run makes its own and
 * logs why (r5_calibration_matches). */
#ifndef R5_PIPELINE_CALIBRATION_H
#define R5_PIPELINE_CALIBRATION_H

#include <stddef.h>

#include "../calib/coil_compress.h"
#include "../calib/espirit.h"
#include "pipeline.h"

typedef struct r5_calibration r5_calibration;

/* 1 when a run of `pipeline` (a concrete name: sense or cs) on this scan makes its maps through
 * the chain above: one frame (every dim after coil of size 1), Cartesian, k-space present. */
int r5_calibration_applies(const r5_scan *scan, const char *pipeline);

/* 1 when every ky-kz position of the calibration block is sampled in the scan's mask (a scan
 * still being built: r5_scan_builder_peek). */
int r5_calibration_block_complete(const r5_scan *scan, const r5_recon_params *p);

/* A new calibration holding copies of what the chain needs from scan (complete or still being
 * built, and not changed during the call): the block, the noise scan when prewhitening applies,
 * the calibration region and the parameters. Nothing computed yet. R5_EINVAL when the scan does
 * not apply (one frame) or its mask has no calibration region; R5_ENOMEM. */
r5_status r5_calibration_input_copy(const r5_scan *scan, const r5_recon_params *p, r5_calibration **out);

/* Runs the chain on ctx. maps_on_host: the maps are made in host memory (a calibration made on
 * one context for a run on another, or a streamed cs frame: cs_slab.h); else where ctx computes. progress (NULL: never stop) is
 * checked inside every step; on any error nothing computed is kept (the input stays). */
r5_status r5_calibration_compute(r5_ctx *ctx, r5_calibration *cal, const r5_progress *progress, int maps_on_host);

/* 1 when cal's maps are those a run of scan (as the pipeline sees it: outer indices without
 * data dropped) with p would make; else 0 with the reason in why (e.g. "the calibration block's
 * samples changed after it was copied"). input_shift: r5_recon_run's scaling of large data. */
int r5_calibration_matches(const r5_calibration *cal, const r5_scan *scan, const r5_recon_params *p,
			   int input_shift, char *why, size_t why_size);

/* The maps [nx, ny, nz, virtual coils, map sets] where ctx computes into *maps: a view of cal's
 * when they are there already (free it as any array; it must not outlive cal), else a copy.
 * R5_EINVAL when nothing is computed. */
r5_status r5_calibration_maps(r5_ctx *ctx, const r5_calibration *cal, r5_array **maps);

/* The same where `where` says (R5_HOST: the streamed cs frame's maps, cs_slab.h). */
r5_status r5_calibration_maps_at(r5_ctx *ctx, const r5_calibration *cal, r5_residency where, r5_array **maps);

/* Seconds r5_calibration_compute took (0 before). */
double r5_calibration_seconds(const r5_calibration *cal);
/* Host bytes cal holds now (block, noise copy, host maps). */
long r5_calibration_bytes(const r5_calibration *cal);
/* Frees the copied input (block and noise): a calibration that will not be checked again. */
void r5_calibration_drop_input(r5_calibration *cal);
void r5_calibration_free(r5_calibration *cal); /* NULL is harmless */

/* Shared with sense.c: ESPIRiT's configuration for p, and the calibration width W (ESPIRiT's
 * ACS cap). */
void r5_calibration_espirit_conf(const r5_recon_params *p, r5_espirit_conf *ec);
long r5_calibration_width(const r5_recon_params *p);
/* Shared with pipeline.c: the coil compression r5_recon_run applies for p (*compress 0: none). */
r5_status r5_calibration_cc_conf(const r5_recon_params *p, r5_cc_conf *cc, int *compress);

#endif
