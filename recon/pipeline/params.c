/* Reconstruction parameters: defaults, setting by name (unknown keys are errors), formatting
 * for provenance, which keys apply to which pipeline (pipeline.h). One table describes every
 * key once per pipeline that reads it. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

/* one place for each pipeline's defaults: the exported structs and r5_recon_defaults */
#define CARTESIAN_DEFAULTS {.combine = "rss"}
#define SENSE_DEFAULTS                                                                              \
	{.n_maps = 1, .iters = 30, .lambda = 0.001f, .kernel_size = 6, .espirit_threshold = 0.02f,      \
	 .espirit_crop = 0.8f}
/* GRAPPA's own: r5_grappa_defaults (calib/grappa.h) — kernel width by geometry, lambda 1e-3 */
#define GRAPPA_DEFAULTS {.combine = "rss", .kernel_size = 0, .lambda = 1e-3f}
#define CS_DEFAULTS {.reg = "l1", .lambda_l1 = R5_PARAM_AUTO, .lambda_tv = R5_PARAM_AUTO, .wavelet = "haar+db4", .spins = 8, \
		     .decouple = 0, .slab = 0, .stream = -1}

#define REALTIME_DEFAULTS {.mode = "grid", .iters = 5, .oversampling = 1.25f, .tolerance = 1e-3f, .max_pending = 0, .coil_maps = 0, \
			   .normal = "nufft", .maps_refresh = 0}
#define GRID_DEFAULTS {.combine = "rss", .dcf = "auto", .frame_spokes = 0, .frame_step = 0, .dcf_iters = 20, .delay = "none"}

const r5_cartesian_params r5_cartesian_params_defaults = CARTESIAN_DEFAULTS;
const r5_grid_params r5_grid_params_defaults = GRID_DEFAULTS;
const r5_realtime_params r5_realtime_params_defaults = REALTIME_DEFAULTS;
/* grasp.h's r5_grasp_defaults: lambda_scale 0.02, spatial TV off, 20 ADMM steps; l+s's scales */
#define GRASP_DEFAULTS {.model = "tv", .lambda = 0.02f, .lambda_space = 0, .lambda_lowrank = 0.01f, \
			.lambda_sparse = 0.005f, .iters = 20}
const r5_grasp_params r5_grasp_params_defaults = GRASP_DEFAULTS;
const r5_sense_params r5_sense_params_defaults = SENSE_DEFAULTS;
const r5_grappa_params r5_grappa_params_defaults = GRAPPA_DEFAULTS;
const r5_cs_params r5_cs_params_defaults = CS_DEFAULTS;

const r5_recon_params r5_recon_defaults = {
	.pipeline = "auto",
	.prewhiten = 1,
	.n_virtual_coils = 0,
	.coil_energy = 0.0f,
	.calib_size = 0,
	.gfactor = 0,
	.cc_mode = "auto",
	.cartesian = CARTESIAN_DEFAULTS,
	.sense = SENSE_DEFAULTS,
	.grappa = GRAPPA_DEFAULTS,
	.cs = CS_DEFAULTS,
	.grid = GRID_DEFAULTS,
	.realtime = REALTIME_DEFAULTS,
	.grasp = GRASP_DEFAULTS,
	.explicit_keys = 0,
};

enum kind { K_STRING, K_INT, K_FLOAT, K_BOOL, K_FLOAT_AUTO /* a float, or "auto" (R5_PARAM_AUTO) */ };
/* which pipeline reads a key (COMMON: all of them) */
enum scope { COMMON, CARTESIAN, SENSE, GRAPPA, CS, GRID, REALTIME, GRASP };
static const char *const scope_names[] = {"", "cartesian", "sense", "grappa", "cs", "grid", "realtime", "grasp"};
#define LAST_SCOPE GRASP

#define FIELD(f) offsetof(r5_recon_params, f), sizeof(((r5_recon_params *)0)->f)

/* One row per (key, pipeline); a key several pipelines have has a row in each. Row i is bit i of
 * explicit_keys. */
static const struct param_def {
	const char *key;
	const char *alias;
	enum scope scope;
	enum kind kind;
	size_t offset, size;
	double min, max;
	const char *help;
	/* OpenRecon's label (recon5t openrecon-label) offers the rows with an id (at most 14, the
	 * format's limit): its UI label and its id there (letters and digits only, the format's
	 * rule); r5_recon_params_set takes the id as the key's name */
	const char *label;
	const char *openrecon_id;
} defs[] = {
	{"pipeline", NULL, COMMON, K_STRING, FIELD(pipeline), 0, 0, "auto | cartesian | sense | grappa | cs | grid | realtime | grasp",
	 "Reconstruction", "config"},
	{"prewhiten", NULL, COMMON, K_BOOL, FIELD(prewhiten), 0, 1, "noise prewhitening (0|1)",
	 "Noise prewhitening", "prewhiten"},
	{"coils_virtual", "coils-virtual", COMMON, K_INT, FIELD(n_virtual_coils), 0, 1024,
	 "virtual coils after compression (0: none)",
	 "Virtual coils (0: no compression)", "coilsVirtual"},
	{"coil_energy", "coil-energy", COMMON, K_FLOAT, FIELD(coil_energy), 0, 1, "keep this fraction of energy (0: off)", NULL, NULL},
	{"calib", "calib_size", COMMON, K_INT, FIELD(calib_size), 0, 4096, "calibration region width (0: all found)",
	 "Calibration width (0: all)", "calib"},
	{"gfactor", NULL, COMMON, K_BOOL, FIELD(gfactor), 0, 1, "compute a g-factor map (0|1)",
	 "g-factor map", "gfactor"},
	{"cc_mode", "cc-mode", COMMON, K_STRING, FIELD(cc_mode), 0, 0, "coil compression: auto | svd | geometric",
	 "Coil compression", "ccMode"},
	{"combine", NULL, CARTESIAN, K_STRING, FIELD(cartesian.combine), 0, 0, "rss | adaptive",
	 "Coil combination", "combine"},
	{"maps", NULL, SENSE, K_INT, FIELD(sense.n_maps), 1, 2, "ESPIRiT map sets (1|2)",
	 "ESPIRiT map sets", "maps"},
	{"iters", NULL, SENSE, K_INT, FIELD(sense.iters), 1, 10000, "CG iterations",
	 "Iterations", "senseIters"},
	{"lambda", NULL, SENSE, K_FLOAT, FIELD(sense.lambda), 0, 1e6, "Tikhonov weight",
	 "Tikhonov weight", "tikhonovLambda"},
	{"kernel", "kernel_size", SENSE, K_INT, FIELD(sense.kernel_size), 2, 16, "ESPIRiT kernel width",
	 "ESPIRiT kernel width", "espiritKernel"},
	{"espirit_threshold", "threshold", SENSE, K_FLOAT, FIELD(sense.espirit_threshold), 0, 1,
	 "ESPIRiT singular value threshold", NULL, NULL},
	{"espirit_crop", "crop", SENSE, K_FLOAT, FIELD(sense.espirit_crop), 0, 1, "ESPIRiT eigenvalue mask threshold", NULL, NULL},
	{"combine", NULL, GRAPPA, K_STRING, FIELD(grappa.combine), 0, 0, "rss | adaptive", NULL, NULL},
	/* 0 (the default: by geometry) is a stored value; a bare "kernel" must also suit SENSE */
	{"kernel", "kernel_size", GRAPPA, K_INT, FIELD(grappa.kernel_size), 0, 16, "GRAPPA readout kernel width", NULL, NULL},
	{"lambda", NULL, GRAPPA, K_FLOAT, FIELD(grappa.lambda), 0, 1e6, "Tikhonov weight (relative)", NULL, NULL},
	/* cs reads SENSE's calibration keys and iterations (the same fields) and its own weights */
	{"maps", NULL, CS, K_INT, FIELD(sense.n_maps), 1, 2, "ESPIRiT map sets (1|2)", NULL, NULL},
	{"iters", NULL, CS, K_INT, FIELD(sense.iters), 1, 10000, "FISTA / ADMM iterations", NULL, NULL},
	{"kernel", "kernel_size", CS, K_INT, FIELD(sense.kernel_size), 2, 16, "ESPIRiT kernel width", NULL, NULL},
	{"espirit_threshold", "threshold", CS, K_FLOAT, FIELD(sense.espirit_threshold), 0, 1,
	 "ESPIRiT singular value threshold", NULL, NULL},
	{"espirit_crop", "crop", CS, K_FLOAT, FIELD(sense.espirit_crop), 0, 1, "ESPIRiT eigenvalue mask threshold", NULL, NULL},
	{"reg", NULL, CS, K_STRING, FIELD(cs.reg), 0, 0, "l1 | tv | l1+tv",
	 "CS regulariser", "reg"},
	{"lambda_l1", NULL, CS, K_FLOAT_AUTO, FIELD(cs.lambda_l1), 0, 1e3, "wavelet L1 weight relative to max |E^H y|, or auto (from the noise level)", NULL, NULL},
	{"lambda_tv", NULL, CS, K_FLOAT_AUTO, FIELD(cs.lambda_tv), 0, 1e3, "TV weight relative to max |E^H y|, or auto (from the noise level)", NULL, NULL},
	{"wavelet", NULL, CS, K_STRING, FIELD(cs.wavelet), 0, 0, "haar | db4 | db8 (Daubechies 4 or 8 taps), or a union: haar+db4 | db4+db8 | haar+db4+db8", NULL, NULL},
	{"spins", NULL, CS, K_INT, FIELD(cs.spins), 1, 64, "randomly shifted wavelet transforms averaged per l1 prox", NULL, NULL},
	{"decouple", NULL, CS, K_BOOL, FIELD(cs.decouple), 0, 1,
	 "3D: x positions as independent 2D ky-kz problems, solved by slabs (1) or one 3D problem (0)", NULL, NULL},
	{"slab", NULL, CS, K_INT, FIELD(cs.slab), 0, 65536, "x positions per slab when decoupled (0: auto)", NULL, NULL},
	{"stream", NULL, CS, K_INT, FIELD(cs.stream), -1, 1,
	 "decoupled on a GPU: k-space and maps stay in host memory, a slab at a time on the device (1), all on the "
	 "device (0), or -1: stream when they exceed half the device's free memory", NULL, NULL},
	{"combine", NULL, GRID, K_STRING, FIELD(grid.combine), 0, 0, "rss | adaptive", NULL, NULL},
	{"dcf", NULL, GRID, K_STRING, FIELD(grid.dcf), 0, 0,
	 "density compensation: auto (ramp for radial spokes, else pipe) | ramp | pipe (Pipe-Menon) | none", NULL, NULL},
	{"frame_spokes", "frame-spokes", GRID, K_INT, FIELD(grid.frame_spokes), 0, 1 << 24,
	 "spokes per frame (0: one frame of all spokes)",
	 "Spokes per frame (0: one frame)", "frameSpokes"},
	{"frame_step", "frame-step", GRID, K_INT, FIELD(grid.frame_step), 0, 1 << 24,
	 "spokes between the first spokes of consecutive frames (0: frame_spokes)", NULL, NULL},
	{"dcf_iters", NULL, GRID, K_INT, FIELD(grid.dcf_iters), 1, 1000, "Pipe-Menon density iterations", NULL, NULL},
	/* non-Cartesian sense (nc_sense_pipeline.c) reads grid's frame keys (the same frames) */
	{"frame_spokes", "frame-spokes", SENSE, K_INT, FIELD(grid.frame_spokes), 0, 1 << 24,
	 "spokes per frame (non-Cartesian sense; 0: one frame of all spokes)", NULL, NULL},
	{"frame_step", "frame-step", SENSE, K_INT, FIELD(grid.frame_step), 0, 1 << 24,
	 "spokes between the first spokes of consecutive frames (0: frame_spokes)", NULL, NULL},
	/* non-Cartesian cs (nc_cs_pipeline.c) reads grid's frame keys too; its cs keys are cs's rows */
	{"frame_spokes", "frame-spokes", CS, K_INT, FIELD(grid.frame_spokes), 0, 1 << 24,
	 "spokes per frame (non-Cartesian cs; 0: one frame of all spokes)", NULL, NULL},
	{"frame_step", "frame-step", CS, K_INT, FIELD(grid.frame_step), 0, 1 << 24,
	 "spokes between the first spokes of consecutive frames (non-Cartesian cs; 0: frame_spokes)", NULL, NULL},
	{"delay", NULL, GRID, K_STRING, FIELD(grid.delay), 0, 0,
	 "gradient delays of radial spokes: none | ring (estimated from the data, corrected)",
	 "Gradient delay correction", "delay"},
	/* gradient-delay correction: r5_recon_run's, before every non-Cartesian pipeline */
	{"delay", NULL, SENSE, K_STRING, FIELD(grid.delay), 0, 0,
	 "gradient delays of radial spokes (non-Cartesian): none | ring", NULL, NULL},
	{"delay", NULL, GRASP, K_STRING, FIELD(grid.delay), 0, 0, "gradient delays of radial spokes: none | ring", NULL, NULL},
	{"delay", NULL, CS, K_STRING, FIELD(grid.delay), 0, 0, "gradient delays of radial spokes (non-Cartesian): none | ring", NULL, NULL},
	/* realtime (recon5td: frames while the scan streams in, service/server/realtime.c) reads
	 * grid's frame keys (the same frames) and its own */
	{"frame_spokes", "frame-spokes", REALTIME, K_INT, FIELD(grid.frame_spokes), 0, 1 << 24,
	 "spokes per frame (realtime: >= 1)", NULL, NULL},
	{"frame_step", "frame-step", REALTIME, K_INT, FIELD(grid.frame_step), 0, 1 << 24,
	 "spokes between the first spokes of consecutive frames (0: frame_spokes)", NULL, NULL},
	{"mode", NULL, REALTIME, K_STRING, FIELD(realtime.mode), 0, 0,
	 "grid (gridding + rss) | iterative (warm-started CG-SENSE per frame, maps reused)", NULL, NULL},
	{"iters", NULL, REALTIME, K_INT, FIELD(realtime.iters), 1, 10000, "CG iterations per frame (mode iterative)", NULL, NULL},
	{"oversampling", NULL, REALTIME, K_FLOAT, FIELD(realtime.oversampling), 1.25, 2,
	 "NUFFT grid oversampling of the frames (1.25: 4x faster than 2 at 256^2, bench_grid)", NULL, NULL},
	{"tolerance", NULL, REALTIME, K_FLOAT, FIELD(realtime.tolerance), 1e-6, 0.1,
	 "NUFFT relative accuracy of the frames (sets the kernel width)", NULL, NULL},
	{"coil_maps", NULL, REALTIME, K_BOOL, FIELD(realtime.coil_maps), 0, 1,
	 "mode grid: combine coils with ESPIRiT maps from the first frame's gridded centre, reused (0: rss)", NULL, NULL},
	{"max_pending", NULL, REALTIME, K_INT, FIELD(realtime.max_pending), 0, 1 << 20,
	 "frames waiting for the frame thread beyond which the oldest is dropped (counted; 0: never drop)", NULL, NULL},
	{"normal", NULL, REALTIME, K_STRING, FIELD(realtime.normal), 0, 0,
	 "mode iterative: CG's normal by the NUFFT pair (nufft) or the 2N Toeplitz kernel made per frame (toeplitz)", NULL,
	 NULL},
	{"maps_refresh", NULL, REALTIME, K_INT, FIELD(realtime.maps_refresh), 0, 1 << 20,
	 "coil maps made again from the frame just sent every this many frames, when no frame waits (0: frame 0's, kept)",
	 NULL, NULL},
	/* grasp (grasp_pipeline.c) reads grid's frame keys; its weights are r5_grasp_defaults' */
	{"frame_spokes", "frame-spokes", GRASP, K_INT, FIELD(grid.frame_spokes), 0, 1 << 24,
	 "spokes per frame (grasp: 0 means 21)", NULL, NULL},
	{"frame_step", "frame-step", GRASP, K_INT, FIELD(grid.frame_step), 0, 1 << 24,
	 "grasp: 0 or frame_spokes (its frames do not overlap)", NULL, NULL},
	{"lambda", NULL, GRASP, K_FLOAT, FIELD(grasp.lambda), 0, 1e3, "temporal TV weight relative to max |A^H W y|", NULL, NULL},
	{"lambda_space", NULL, GRASP, K_FLOAT, FIELD(grasp.lambda_space), 0, 1e3,
	 "spatial TV weight relative to max |A^H W y| (0: off)", NULL, NULL},
	{"iters", NULL, GRASP, K_INT, FIELD(grasp.iters), 1, 10000, "ADMM steps (l+s: its steps)", NULL, NULL},
	{"model", NULL, GRASP, K_STRING, FIELD(grasp.model), 0, 0,
	 "tv (temporal TV, GRASP) | l+s (low rank + temporal-Fourier sparse, Otazo 2015)", NULL, NULL},
	{"lambda_lowrank", NULL, GRASP, K_FLOAT, FIELD(grasp.lambda_lowrank), 0, 1,
	 "l+s: singular-value threshold relative to the largest singular value", NULL, NULL},
	{"lambda_sparse", NULL, GRASP, K_FLOAT, FIELD(grasp.lambda_sparse), 0, 1,
	 "l+s: temporal-Fourier threshold relative to the largest coefficient", NULL, NULL},
};
#define N_DEFS (sizeof defs / sizeof defs[0])
_Static_assert(N_DEFS <= 64, "explicit_keys holds one bit per row");

static int matches(const struct param_def *d, const char *key)
{
	return !strcmp(key, d->key) || (d->alias && !strcmp(key, d->alias));
}

static int same_default(const struct param_def *a, const struct param_def *b)
{
	const char *base = (const char *)&r5_recon_defaults;
	return a->size == b->size && !memcmp(base + a->offset, base + b->offset, a->size);
}

/* The rows an OpenRecon id (on row `row`) sets: its key's rows whose default is row's, so that
 * the label's one default is each one's ("iters" 30: sense and cs, not grasp's 20). */
static void id_rows(size_t row, size_t rows[N_DEFS], size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < N_DEFS; i++)
		if (!strcmp(defs[i].key, defs[row].key) && same_default(&defs[i], &defs[row]))
			rows[(*n)++] = i;
}

/* The rows `key` names: "kernel" every pipeline's, "grappa.kernel" one; an OpenRecon id
 * ("coilsVirtual") names its key; *n = 0 when none. */
static void find(const char *key, size_t rows[N_DEFS], size_t *n)
{
	const char *dot = strchr(key, '.');
	int scope = -1;
	*n = 0;
	if (dot) {
		for (int s = CARTESIAN; s <= LAST_SCOPE; s++)
			if ((size_t)(dot - key) == strlen(scope_names[s]) && !strncmp(key, scope_names[s], (size_t)(dot - key)))
				scope = s;
		if (scope < 0)
			return;
		key = dot + 1;
	}
	for (size_t i = 0; i < N_DEFS; i++)
		if (matches(&defs[i], key) && (scope < 0 || (int)defs[i].scope == scope))
			rows[(*n)++] = i;
	/* not a key: an OpenRecon id (an id equal to a key means that key) */
	for (size_t i = 0; i < N_DEFS && !*n && !dot; i++)
		if (defs[i].openrecon_id && !strcmp(key, defs[i].openrecon_id))
			id_rows(i, rows, n);
}

/* A value as error messages may show it: a short setting word (lower-case letters, digits, . _ +
 * -, at most 16) as given, anything else only by its length: a console may put text there that
 * must not reach logs (patient data never does). */
static const char *shown_value(const char *value, char out[48])
{
	size_t n = strlen(value);
	int plain = n > 0 && n <= 16;
	for (size_t i = 0; i < n && plain; i++)
		plain = (value[i] >= 'a' && value[i] <= 'z') || (value[i] >= '0' && value[i] <= '9') ||
			strchr("._+-", value[i]) != NULL;
	if (plain)
		snprintf(out, 48, "'%s'", value);
	else
		snprintf(out, 48, "a value of %zu characters", n);
	return out;
}

/* The values a string key takes (NULL-terminated; NULL: any text that fits). */
static const char *const *choices_of(const char *key)
{
	static const char *const pipelines[] = {"auto", "cartesian", "sense", "grappa", "cs", "grid", "realtime", "grasp", NULL};
	static const char *const modes[] = {"grid", "iterative", NULL};
	static const char *const normals[] = {"nufft", "toeplitz", NULL};
	static const char *const dcfs[] = {"auto", "ramp", "pipe", "none", NULL};
	static const char *const delays[] = {"none", "ring", NULL};
	static const char *const regs[] = {"l1", "tv", "l1+tv", NULL};
	static const char *const wavelets[] = {"haar", "db4", "db8", "haar+db4", "db4+db8", "haar+db4+db8", NULL};
	static const char *const combines[] = {"rss", "adaptive", NULL};
	static const char *const cc_modes[] = {"auto", "svd", "geometric", NULL};
	static const char *const models[] = {"tv", "l+s", NULL};
	return !strcmp(key, "pipeline")  ? pipelines
	       : !strcmp(key, "combine") ? combines
	       : !strcmp(key, "cc_mode") ? cc_modes
	       : !strcmp(key, "reg")     ? regs
	       : !strcmp(key, "wavelet") ? wavelets
	       : !strcmp(key, "dcf")     ? dcfs
	       : !strcmp(key, "delay")   ? delays
	       : !strcmp(key, "mode")    ? modes
	       : !strcmp(key, "model")   ? models
	       : !strcmp(key, "normal")  ? normals
					 : NULL;
}

static r5_status check_choice(const char *key, const char *value)
{
	const char *const *choices = choices_of(key);
	if (!choices)
		return R5_OK;
	for (int i = 0; choices[i]; i++)
		if (!strcmp(value, choices[i]))
			return R5_OK;
	char shown[48];
	return r5_set_error(R5_EINVAL, "parameter %s: unknown value %s", key, shown_value(value, shown));
}

static int takes_auto(const struct param_def *d) { return d->kind == K_FLOAT_AUTO; }
static int is_float(const struct param_def *d) { return d->kind == K_FLOAT || d->kind == K_FLOAT_AUTO; }

/* v (finite) against the key's range and kind; text is the value as given, for the message. */
static r5_status check_range(const struct param_def *d, double v, const char *text, int stored)
{
	if (stored && takes_auto(d) && v == R5_PARAM_AUTO) /* a filled-in struct's auto (as text: "auto") */
		return R5_OK;
	if (v < d->min || v > d->max)
		return r5_set_error(R5_EINVAL, "parameter %s: %s outside [%g, %g]%s", d->key, text, d->min, d->max,
				    takes_auto(d) ? " (or auto)" : "");
	if (!is_float(d) && v != floor(v))
		return r5_set_error(R5_EINVAL, "parameter %s: '%s' is not an integer", d->key, text);
	return R5_OK;
}

/* Checks value for row d; *number = the parsed number (not for strings). */
static r5_status parse_value(const struct param_def *d, const char *value, double *number)
{
	char *end = NULL;
	if (d->kind == K_STRING) {
		if (strlen(value) >= d->size)
			return r5_set_error(R5_EINVAL, "parameter %s: value too long", d->key);
		return check_choice(d->key, value);
	}
	if (takes_auto(d) && !strcmp(value, "auto")) {
		*number = R5_PARAM_AUTO;
		return R5_OK;
	}
	errno = 0;
	double v = strtod(value, &end);
	/* the whole string, and a finite number: comparisons with NaN are false, so "nan" would pass
	 * any range check below */
	char shown[48];
	if (errno || end == value || *end != '\0')
		return r5_set_error(R5_EINVAL, "parameter %s: %s is not a number", d->key, shown_value(value, shown));
	if (!isfinite(v))
		return r5_set_error(R5_EINVAL, "parameter %s: %s is not a finite number", d->key, shown_value(value, shown));
	*number = v;
	return check_range(d, v, value, 0);
}

r5_status r5_recon_params_set(r5_recon_params *p, const char *key, const char *value)
{
	size_t rows[N_DEFS], n;
	double v[N_DEFS];
	find(key, rows, &n);
	if (!n) {
		char known[512] = "";
		for (size_t i = 0; i < N_DEFS; i++) {
			int seen = 0;
			for (size_t j = 0; j < i; j++)
				seen |= !strcmp(defs[j].key, defs[i].key);
			if (seen)
				continue;
			strncat(known, known[0] ? ", " : "", sizeof known - strlen(known) - 1);
			strncat(known, defs[i].key, sizeof known - strlen(known) - 1);
		}
		char shown[48];
		return r5_set_error(R5_EINVAL, "unknown parameter %s (known: %s; a pipeline's own: grappa.kernel, ...)",
				    shown_value(key, shown), known);
	}
	/* every row first, so that a refused value changes nothing */
	for (size_t i = 0; i < n; i++)
		R5_TRY(parse_value(&defs[rows[i]], value, &v[i]));
	for (size_t i = 0; i < n; i++) {
		const struct param_def *d = &defs[rows[i]];
		char *base = (char *)p + d->offset;
		if (d->kind == K_STRING)
			strcpy(base, value);
		else if (is_float(d))
			*(float *)base = (float)v[i];
		else
			*(int *)base = (int)v[i];
		p->explicit_keys |= 1ULL << rows[i];
	}
	return R5_OK;
}

r5_status r5_recon_params_check(const r5_recon_params *p)
{
	for (size_t i = 0; i < N_DEFS; i++) {
		const struct param_def *d = &defs[i];
		const char *base = (const char *)p + d->offset;
		char text[32];
		if (d->kind == K_STRING) {
			if (!memchr(base, '\0', d->size))
				return r5_set_error(R5_EINVAL, "parameter %s: value not terminated", d->key);
			R5_TRY(check_choice(d->key, base));
			continue;
		}
		double v = is_float(d) ? (double)*(const float *)base : (double)*(const int *)base;
		snprintf(text, sizeof text, "%g", v);
		if (!isfinite(v))
			return r5_set_error(R5_EINVAL, "parameter %s: '%s' is not a finite number", d->key, text);
		R5_TRY(check_range(d, v, text, 1));
	}
	return R5_OK;
}

static int scope_of(const char *pipeline)
{
	for (int s = CARTESIAN; s <= LAST_SCOPE; s++)
		if (!strcmp(pipeline, scope_names[s]))
			return s;
	return -1;
}

r5_status r5_recon_params_check_applies(const r5_recon_params *p, const char *pipeline)
{
	int run = scope_of(pipeline);
	for (size_t i = 0; i < N_DEFS; i++) {
		const struct param_def *d = &defs[i];
		if (!(p->explicit_keys >> i & 1) || d->scope == COMMON || (int)d->scope == run)
			continue;
		/* the running pipeline's row of the same key: set too (a bare key sets both) is fine;
		 * not set means this row was set as "sense.kernel" */
		int has = 0, set = 0;
		for (size_t j = 0; j < N_DEFS; j++)
			if ((int)defs[j].scope == run && !strcmp(defs[j].key, d->key)) {
				has = 1;
				set = (int)(p->explicit_keys >> j & 1);
			}
		if (set)
			continue;
		if (has)
			return r5_set_error(R5_EINVAL, "parameter %s.%s does not apply to pipeline %s", scope_names[d->scope],
					    d->key, pipeline);
		return r5_set_error(R5_EINVAL, "parameter %s does not apply to pipeline %s", d->key, pipeline);
	}
	/* a slab width is read only by the decoupled solve: refused rather than ignored without it */
	if (run == CS && p->cs.slab > 0 && !p->cs.decouple)
		return r5_set_error(R5_EINVAL, "parameter slab=%d needs decouple=1 (decouple=0 solves a 3D frame as one problem)",
				    p->cs.slab);
	if (run == CS && p->cs.stream == 1 && !p->cs.decouple)
		return r5_set_error(R5_EINVAL, "parameter stream=1 needs decouple=1 (only the decoupled solve streams slabs)");
	return R5_OK;
}

void r5_recon_params_format(const r5_recon_params *p, char *text, size_t size)
{
	size_t used = 0;
	int run = scope_of(p->pipeline);
	text[0] = '\0';
	for (size_t i = 0; i < N_DEFS && used < size; i++) {
		const struct param_def *d = &defs[i];
		if (run >= 0 && d->scope != COMMON && (int)d->scope != run)
			continue;
		const char *base = (const char *)p + d->offset;
		const char *sep = used ? " " : "";
		const char *scope = run < 0 && d->scope != COMMON ? scope_names[d->scope] : "";
		const char *dot = scope[0] ? "." : "";
		int n;
		if (d->kind == K_STRING)
			n = snprintf(text + used, size - used, "%s%s%s%s=%s", sep, scope, dot, d->key, base);
		else if (takes_auto(d) && *(const float *)base == R5_PARAM_AUTO)
			n = snprintf(text + used, size - used, "%s%s%s%s=auto", sep, scope, dot, d->key);
		else if (is_float(d))
			n = snprintf(text + used, size - used, "%s%s%s%s=%g", sep, scope, dot, d->key, *(const float *)base);
		else
			n = snprintf(text + used, size - used, "%s%s%s%s=%d", sep, scope, dot, d->key, *(const int *)base);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

size_t r5_recon_params_count(void) { return N_DEFS; }

r5_status r5_recon_params_describe(size_t row, r5_param_info *info)
{
	if (row >= N_DEFS)
		return r5_set_error(R5_EINVAL, "parameter row %zu: the table has %zu", row, (size_t)N_DEFS);
	const struct param_def *d = &defs[row];
	const char *base = (const char *)&r5_recon_defaults + d->offset;
	memset(info, 0, sizeof *info);
	info->key = d->key;
	info->pipeline = scope_names[d->scope];
	info->help = d->help;
	info->label = d->label;
	info->openrecon_id = d->openrecon_id;
	if (d->openrecon_id) { /* the pipelines its id reaches */
		size_t rows[N_DEFS], n;
		id_rows(row, rows, &n);
		for (size_t i = 0; i < n; i++) {
			const char *name = defs[rows[i]].scope == COMMON ? "all" : scope_names[defs[rows[i]].scope];
			size_t used = strlen(info->pipelines);
			snprintf(info->pipelines + used, sizeof info->pipelines - used, "%s%s", used ? ", " : "", name);
		}
	}
	info->min = d->min;
	info->max = d->max;
	info->choices = d->kind == K_STRING ? choices_of(d->key) : NULL;
	switch (d->kind) {
	case K_STRING:
		info->type = info->choices ? "choice" : "string";
		snprintf(info->default_text, sizeof info->default_text, "%s", base);
		break;
	case K_INT:
		info->type = "int";
		snprintf(info->default_text, sizeof info->default_text, "%d", *(const int *)base);
		break;
	case K_BOOL:
		info->type = "boolean";
		snprintf(info->default_text, sizeof info->default_text, "%s", *(const int *)base ? "true" : "false");
		break;
	case K_FLOAT:
		info->type = "double";
		snprintf(info->default_text, sizeof info->default_text, "%g", (double)*(const float *)base);
		break;
	case K_FLOAT_AUTO: /* a number or the word auto: text */
		info->type = "string";
		if (*(const float *)base == R5_PARAM_AUTO)
			snprintf(info->default_text, sizeof info->default_text, "auto");
		else
			snprintf(info->default_text, sizeof info->default_text, "%g", (double)*(const float *)base);
		break;
	}
	return R5_OK;
}

int r5_recon_params_is_default(const char *key, const char *value)
{
	size_t rows[N_DEFS], n;
	find(key, rows, &n);
	if (!n)
		return 0;
	r5_recon_params p = r5_recon_defaults;
	if (r5_recon_params_set(&p, key, value) != R5_OK)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct param_def *d = &defs[rows[i]];
		if (memcmp((const char *)&p + d->offset, (const char *)&r5_recon_defaults + d->offset, d->size))
			return 0;
	}
	return 1;
}
