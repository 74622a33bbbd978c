/* Named reconstructions: a scan in, an image set out.
 *
 *   cartesian  inverse FFT + coil combination (rss | adaptive Walsh), zero-filled partial Fourier
 *   sense      ESPIRiT maps + CG-SENSE (parallel imaging issue)
 *   grappa     GRAPPA kernels in k-space + coil combination (parallel imaging issue)
 *   auto       chosen from the header: parallelImaging with acceleration > 1 → sense (grappa
 *              when calibrationMode says so is not implied: auto picks sense), else cartesian
 *
 * Parameters are a struct with exported defaults; r5_recon_params_set takes "key", "value"
 * strings (command line, service requests) and rejects unknown keys and non-finite numbers.
 * Progress reports and cancellation go through one hook (core/progress.h) that every stage
 * checks at least every ~0.5 s of work, down to calibration, operators and solver iterations.
 *
 * Frames (the outer dims: contrast, set, repetition, phase, slice, average, ...) without any
 * sampled line are not reconstructed: an outer index that holds no data in any frame is dropped
 * (images exist only for the indices with data, in order; one log line says what was dropped),
 * and a remaining frame without data keeps a zero image. Input k-space (and the noise scan,
 * with prewhitening) with a NaN or Inf is refused (R5_EINVAL); a run that returns R5_OK returns
 * only finite pixels (else R5_EINTERNAL). */
#ifndef R5_PIPELINE_PIPELINE_H
#define R5_PIPELINE_PIPELINE_H

#include "../core/ctx.h"
#include "../core/progress.h"
#include "../io/images.h"
#include "../io/scan.h"

typedef struct r5_recon_params {
	char pipeline[16];      /* auto | cartesian | sense | grappa */
	char combine[16];       /* rss | adaptive */
	int prewhiten;          /* 1: noise prewhitening when a noise scan came */
	int n_virtual_coils;    /* 0: no compression */
	float coil_energy;      /* keep this fraction of energy when > 0 (and n_virtual_coils == 0) */
	int n_maps;             /* ESPIRiT map sets: 1 or 2 */
	int iters;              /* CG iterations */
	float lambda;           /* Tikhonov weight (CG-SENSE) */
	int calib_size;         /* 0: take the whole calibration region found */
	int kernel_size;        /* ESPIRiT / GRAPPA kernel width */
	float espirit_threshold;/* ESPIRiT calibration matrix singular value threshold */
	float espirit_crop;     /* ESPIRiT eigenvalue mask threshold */
	int gfactor;            /* 1: compute a g-factor map */
	char cc_mode[16];       /* coil compression: auto (geometric for 3D, else svd) | svd | geometric */
} r5_recon_params;

extern const r5_recon_params r5_recon_defaults;

/* Sets one parameter by name; unknown keys and bad values (not the whole string a number, not
 * finite — "nan", "inf" —, out of range, not an integer where one is wanted) are R5_EINVAL
 * naming the key. */
r5_status r5_recon_params_set(r5_recon_params *p, const char *key, const char *value);
/* Checks a filled-in struct the same way (r5_recon_run calls it first): R5_EINVAL naming the key. */
r5_status r5_recon_params_check(const r5_recon_params *p);
/* "pipeline=sense coils_virtual=8 ..." (for provenance) */
void r5_recon_params_format(const r5_recon_params *p, char *text, size_t size);

/* The progress and cancellation hook, r5_progress and r5_progress_check, live in
 * core/progress.h so that calibration, operators and solvers take it too. */

r5_status r5_recon_run(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *params, const r5_progress *progress,
		       r5_image_set **out);

#endif
