/* Named reconstructions: a scan in, an image set out.
 *
 *   cartesian  inverse FFT + coil combination (rss | adaptive Walsh), zero-filled partial Fourier
 *   sense      ESPIRiT maps + CG-SENSE (parallel imaging issue); for a non-Cartesian scan NLINV
 *              maps + CG-SENSE through the Toeplitz normal (nc_sense.h, nlinv.h)
 *   grappa     GRAPPA kernels in k-space + coil combination (parallel imaging issue)
 *   grid       non-Cartesian: density-compensated adjoint NUFFT + coil combination (grid.h)
 *   auto       chosen from the header: parallelImaging with acceleration > 1 → sense (grappa
 *              when calibrationMode says so is not implied: auto picks sense), else cartesian;
 *              a non-Cartesian scan (scan->traj) → sense for one frame of several coils,
 *              grid for frames (frame_spokes) or one coil
 *
 * A non-Cartesian scan (scan.h: kspace [1, n_read, n_spokes, coils] and traj) runs only the
 * pipelines made for one (grid, sense); the others refuse it (R5_ENOTSUP), and grid refuses a
 * Cartesian scan (R5_EINVAL). A scan whose header names a non-Cartesian trajectory but that
 * carries none is refused (R5_EINVAL: trajectory missing).
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
 * with prewhitening) with a NaN or Inf, or a sample above 1e30 in magnitude (a corrupted value:
 * no raw data comes near it), is refused (R5_EINVAL); data above 2^40 (|x|^2 and sums would
 * overflow single precision) are scaled down by a power of two for the run, in place, and
 * restored before r5_recon_run returns (so a scan is not shared with another thread during a
 * run); the images come back on the data's scale (or in SNR units when prewhitened). A run that
 * returns R5_OK returns only finite pixels (else R5_EINTERNAL). */
#ifndef R5_PIPELINE_PIPELINE_H
#define R5_PIPELINE_PIPELINE_H

#include "../core/ctx.h"
#include "../core/progress.h"
#include "../io/images.h"
#include "../io/scan.h"

/* Keys of one pipeline only. */
typedef struct r5_cartesian_params {
	char combine[16];       /* rss | adaptive */
} r5_cartesian_params;

typedef struct r5_sense_params {
	int n_maps;             /* ESPIRiT map sets: 1 or 2 */
	int iters;              /* CG iterations */
	float lambda;           /* Tikhonov weight, absolute (ESPIRiT maps and the FFT make |E^H E| ~ 1) */
	int kernel_size;        /* ESPIRiT kernel width */
	float espirit_threshold;/* ESPIRiT calibration matrix singular value threshold */
	float espirit_crop;     /* ESPIRiT eigenvalue mask threshold */
} r5_sense_params;

/* Compressed sensing (pipeline cs): SENSE's ESPIRiT keys, iterations and map sets (sense.*),
 * plus the regulariser. Weights are relative to the data's scale: the absolute weight is the
 * relative one times max |E^H y| (the zero-filled SENSE image's peak), so one default works
 * across scanners, gains and coil counts. */
/* a weight set to "auto" (r5_recon_params_set) */
#define R5_PARAM_AUTO (-1.0f)

typedef struct r5_cs_params {
	char reg[8];     /* l1 (Daubechies-4 wavelets, FISTA) | tv (isotropic, ADMM) | l1+tv (ADMM) */
	float lambda_l1; /* wavelet L1 weight relative to max |E^H y|, or R5_PARAM_AUTO (noise level) */
	float lambda_tv; /* total variation weight, the same */
	char wavelet[16]; /* haar | db4 | db8, or a union of them (haar+db4, ...) */
	int spins;       /* randomly shifted wavelet transforms averaged per l1 prox (cycle spinning) */
	/* 3D frames: 1 decouples the readout (the x positions as independent 2D ky-kz problems,
	 * regularisers over y, z, solved in slabs of x positions: cs_slab.h); 0 (default: the better
	 * images measured, cs_slab.h) solves the volume as one problem with 3D regularisers */
	int decouple;
	int slab;        /* x positions per slab, decouple=1 only (else refused); 0: auto (cs_slab.h) */
	/* decoupled frames on a device: 1 streams k-space and maps through device memory a slab at a
	 * time from host memory, 0 keeps the frame in device memory, -1 (default) streams when the
	 * frame's k-space and maps exceed half of what the device can still allocate (cs_slab.h) */
	int stream;
} r5_cs_params;

typedef struct r5_grappa_params {
	char combine[16];       /* rss | adaptive */
	int kernel_size;        /* readout kernel width (even: one less); 0: 7 for ky, 5 for ky-kz (calib/grappa.h) */
	float lambda;           /* Tikhonov weight relative to trace(A^H A) / n (calib/grappa.h) */
} r5_grappa_params;

/* Gridding of a non-Cartesian scan (pipeline grid, grid.h): density-compensated adjoint NUFFT
 * and coil combination, one frame from all spokes or, with frame_spokes > 0, frames of that many
 * consecutive spokes every frame_step spokes (images' dim 10). */
typedef struct r5_grid_params {
	char combine[16]; /* rss | adaptive */
	char dcf[8];      /* density compensation: auto (ramp for radial spokes, else pipe) | ramp | pipe | none */
	int frame_spokes; /* spokes per frame; 0: one frame of all spokes */
	int frame_step;   /* spokes from one frame's first to the next's; 0: frame_spokes */
	int dcf_iters;    /* Pipe-Menon iterations */
	char delay[8];    /* gradient delays: none | ring (RING estimate from all spokes, applied to
			   * every frame's radial trajectory: recon/calib/gradient_delay.h) */
} r5_grid_params;

/* Pipeline realtime (recon5td only: frames while the scan streams in, service/server/realtime.c):
 * grid's frame keys (grid.frame_spokes >= 1, grid.frame_step) make the same frames as the
 * offline grid pipeline, sent as each one's last spoke arrives; these keys are its own. */
typedef struct r5_realtime_params {
	char mode[16]; /* grid (gridding + rss) | iterative (warm-started CG-SENSE per frame, maps reused) */
	int iters;     /* CG iterations per frame, mode iterative */
	/* the frames' NUFFT (nufft.h r5_nufft_opts): 1.25 and 1e-3 by default, 4x faster than the grid
	 * pipeline's 2 and 1e-5 at 256^2 x 8 coils (bench_grid); 2 and 1e-5 make the grid
	 * pipeline's frames bit for bit */
	float oversampling;
	float tolerance;
	/* frames due but not yet made beyond which the oldest waiting one is dropped (counted in
	 * Completed.frames_dropped): for a display that wants the newest frame; 0 never drops */
	int max_pending;
	/* mode grid: 1 combines the coils with ESPIRiT maps made once from the first frame's gridded
	 * centre (width calib) and reused (complex frames, phase kept); 0: rss */
	int coil_maps;
	/* mode iterative: how CG applies A^H A (nc_sense.h r5_nc_normal): nufft (the NUFFT pair, the
	 * default: no kernel per frame, 7x less CPU per frame than toeplitz at 256^2 x 8 coils, 21
	 * spokes, bench_rt_iterative) | toeplitz (the 2N kernel, exact; a kernel per frame) */
	char normal[16];
	/* the coil maps (mode iterative, or coil_maps 1) made again from the window of the frame just
	 * sent every maps_refresh frames, when no frame waits (realtime.c); 0: frame 0's, kept */
	int maps_refresh;
} r5_realtime_params;

/* GRASP (grasp.h): frames of grid.frame_spokes (0: 21) consecutive spokes, temporal TV; the
 * weights relative to max |A^H W y| (r5_grasp_opts' lambda_scale and lambda_space_scale). Model
 * l+s: low rank + sparse instead (r5_grasp_opts' lowrank_scale and sparse_scale). */
typedef struct r5_grasp_params {
	char model[8];        /* tv (default) | l+s */
	float lambda;         /* temporal TV weight, relative (0.02) */
	float lambda_space;   /* spatial TV weight, relative; 0: off (default) */
	float lambda_lowrank; /* l+s: singular-value threshold relative to sigma_1 */
	float lambda_sparse;  /* l+s: temporal-Fourier threshold relative to its largest magnitude */
	int iters;            /* ADMM steps (20); l+s: its steps */
} r5_grasp_params;

/* The common keys, then one sub-struct per pipeline; only the one that runs is read.
 *
 * Keys by name (r5_recon_params_set): a bare key that several pipelines have ("kernel",
 * "lambda", "combine") sets it in each of them, so it applies to whichever runs; "grappa.kernel"
 * sets only that pipeline's. Every key set by name is recorded in explicit_keys, and r5_recon_run,
 * once `auto` has chosen, refuses (R5_EINVAL) a recorded key that the chosen pipeline does not
 * use: "parameter maps does not apply to pipeline grappa". Fields assigned directly are not
 * recorded (a program that fills the struct knows which sub-struct it fills). */
typedef struct r5_recon_params {
	char pipeline[16];      /* auto | cartesian | sense | grappa | cs | grid (non-Cartesian) */
	int prewhiten;          /* 1: noise prewhitening when a noise scan came */
	int n_virtual_coils;    /* 0: no compression */
	float coil_energy;      /* keep this fraction of energy when > 0 (and n_virtual_coils == 0) */
	/* calibration region width (coil compression and the pipeline's calibration); 0: the
	 * whole region found (SENSE caps it at 24) */
	int calib_size;
	int gfactor;            /* 1: compute a g-factor map (sense, grappa) */
	char cc_mode[16];       /* coil compression: auto (geometric for 3D, else svd) | svd | geometric */
	r5_cartesian_params cartesian;
	r5_sense_params sense;
	r5_grappa_params grappa;
	r5_cs_params cs;
	r5_grid_params grid;
	r5_realtime_params realtime;
	r5_grasp_params grasp;
	unsigned long long explicit_keys; /* which keys r5_recon_params_set set (params.c's table order) */
} r5_recon_params;

extern const r5_cartesian_params r5_cartesian_params_defaults;
extern const r5_sense_params r5_sense_params_defaults;
extern const r5_grappa_params r5_grappa_params_defaults; /* = what calib/grappa.h does unset */
extern const r5_cs_params r5_cs_params_defaults;
extern const r5_realtime_params r5_realtime_params_defaults;
extern const r5_grasp_params r5_grasp_params_defaults;
extern const r5_grid_params r5_grid_params_defaults;
extern const r5_recon_params r5_recon_defaults;          /* holds the ones above, nothing recorded */

/* Sets one parameter by name ("kernel", or "grappa.kernel" for one pipeline's); unknown keys and
 * bad values (not the whole string a number, not finite — "nan", "inf" —, out of range, not an
 * integer where one is wanted; a bare key's value must suit every pipeline that has the key) are
 * R5_EINVAL naming the key, and leave *p untouched. */
r5_status r5_recon_params_set(r5_recon_params *p, const char *key, const char *value);
/* Checks a filled-in struct the same way (r5_recon_run calls it first): R5_EINVAL naming the key. */
r5_status r5_recon_params_check(const r5_recon_params *p);
/* R5_EINVAL "parameter maps does not apply to pipeline grappa" when a key recorded in
 * p->explicit_keys is not used by `pipeline` (a concrete name, after `auto` has chosen); for cs
 * also a slab width without decouple=1. */
r5_status r5_recon_params_check_applies(const r5_recon_params *p, const char *pipeline);
/* "pipeline=sense coils_virtual=8 ... iters=30 ..." (for provenance): the common keys and those
 * of p->pipeline; with pipeline=auto every pipeline's, qualified ("sense.iters=30"). */
void r5_recon_params_format(const r5_recon_params *p, char *text, size_t size);

/* The parameter table, row by row (a key several pipelines read has a row in each), for views
 * generated from it (recon5t openrecon-label). Strings point into the table. */
typedef struct r5_param_info {
	const char *key;              /* the name r5_recon_params_set takes */
	const char *pipeline;         /* the pipeline whose row this is; "" for a common key */
	const char *type;             /* int | double | boolean | string | choice (OpenRecon's types) */
	const char *help, *label;     /* label: NULL unless OpenRecon offers the row */
	/* its id in the OpenRecon label (letters, digits), or NULL. r5_recon_params_set takes it:
	 * it sets the rows of this key whose default is this row's (pipelines: which those are) */
	const char *openrecon_id;
	char pipelines[128];          /* "sense, cs"; "all" for a common key */
	double min, max;              /* int and double: the accepted range */
	const char *const *choices;   /* choice: the values, NULL-terminated */
	char default_text[32];        /* r5_recon_defaults' value as text (booleans: true | false) */
} r5_param_info;
size_t r5_recon_params_count(void);
/* R5_EINVAL for a row past the table. */
r5_status r5_recon_params_describe(size_t row, r5_param_info *info);
/* 1 when setting key = value on the defaults changes nothing (every row the key names keeps its
 * default): an OpenRecon console sends every value of its UI, and a default that the chosen
 * pipeline does not read must not be refused as "does not apply" (service/server/mrd.c). */
int r5_recon_params_is_default(const char *key, const char *value);

/* The progress and cancellation hook, r5_progress and r5_progress_check, live in
 * core/progress.h so that calibration, operators and solvers take it too. */

r5_status r5_recon_run(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *params, const r5_progress *progress,
		       r5_image_set **out);

/* r5_recon_run with the coil maps' calibration made ahead (calibration.h: recon5td computes it
 * while the scan streams in). It is used when it is the one the run would make — then the
 * images are bit for bit those of r5_recon_run, and the set's stage "espirit-ahead" holds the
 * seconds it took before — else the run makes its own, with one log line saying why.
 * calibration NULL: r5_recon_run. The calibration is only read, and may be used by one run at a
 * time. */
struct r5_calibration;
r5_status r5_recon_run_calibrated(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *params,
				  const struct r5_calibration *calibration, const r5_progress *progress,
				  r5_image_set **out);

#endif
