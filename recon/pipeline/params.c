/* Reconstruction parameters: defaults, setting by name (unknown keys are errors), formatting
 * for provenance (pipeline.h). One table describes every key once. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

const r5_recon_params r5_recon_defaults = {
	.pipeline = "auto",
	.combine = "rss",
	.prewhiten = 1,
	.n_virtual_coils = 0,
	.coil_energy = 0.0f,
	.n_maps = 1,
	.iters = 30,
	.lambda = 0.001f,
	.calib_size = 0,
	.kernel_size = 6,
	.espirit_threshold = 0.02f,
	.espirit_crop = 0.8f,
	.gfactor = 0,
	.cc_mode = "auto",
};

enum kind { K_STRING, K_INT, K_FLOAT, K_BOOL };

static const struct param_def {
	const char *key;
	const char *alias;
	enum kind kind;
	size_t offset, size;
	double min, max;
	const char *help;
} defs[] = {
	{"pipeline", NULL, K_STRING, offsetof(r5_recon_params, pipeline), sizeof(((r5_recon_params *)0)->pipeline), 0, 0,
	 "auto | cartesian | sense | grappa"},
	{"combine", NULL, K_STRING, offsetof(r5_recon_params, combine), sizeof(((r5_recon_params *)0)->combine), 0, 0,
	 "rss | adaptive"},
	{"prewhiten", NULL, K_BOOL, offsetof(r5_recon_params, prewhiten), 0, 0, 1, "noise prewhitening (0|1)"},
	{"coils_virtual", "coils-virtual", K_INT, offsetof(r5_recon_params, n_virtual_coils), 0, 0, 1024,
	 "virtual coils after compression (0: none)"},
	{"coil_energy", "coil-energy", K_FLOAT, offsetof(r5_recon_params, coil_energy), 0, 0, 1,
	 "keep this fraction of energy (0: off)"},
	{"maps", NULL, K_INT, offsetof(r5_recon_params, n_maps), 0, 1, 2, "ESPIRiT map sets (1|2)"},
	{"iters", NULL, K_INT, offsetof(r5_recon_params, iters), 0, 1, 10000, "CG iterations"},
	{"lambda", NULL, K_FLOAT, offsetof(r5_recon_params, lambda), 0, 0, 1e6, "Tikhonov weight"},
	{"calib", "calib_size", K_INT, offsetof(r5_recon_params, calib_size), 0, 0, 4096,
	 "calibration region width (0: all found)"},
	{"kernel", "kernel_size", K_INT, offsetof(r5_recon_params, kernel_size), 0, 2, 16, "kernel width"},
	{"espirit_threshold", "threshold", K_FLOAT, offsetof(r5_recon_params, espirit_threshold), 0, 0, 1,
	 "ESPIRiT singular value threshold"},
	{"espirit_crop", "crop", K_FLOAT, offsetof(r5_recon_params, espirit_crop), 0, 0, 1,
	 "ESPIRiT eigenvalue mask threshold"},
	{"gfactor", NULL, K_BOOL, offsetof(r5_recon_params, gfactor), 0, 0, 1, "compute a g-factor map (0|1)"},
	{"cc_mode", "cc-mode", K_STRING, offsetof(r5_recon_params, cc_mode), sizeof(((r5_recon_params *)0)->cc_mode), 0, 0,
	 "coil compression: auto | svd | geometric"},
};

static const struct param_def *find(const char *key)
{
	for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
		if (!strcmp(key, defs[i].key) || (defs[i].alias && !strcmp(key, defs[i].alias)))
			return &defs[i];
	return NULL;
}

static r5_status check_choice(const char *key, const char *value)
{
	static const char *const pipelines[] = {"auto", "cartesian", "sense", "grappa", NULL};
	static const char *const combines[] = {"rss", "adaptive", NULL};
	static const char *const cc_modes[] = {"auto", "svd", "geometric", NULL};
	const char *const *choices = !strcmp(key, "pipeline")  ? pipelines
				     : !strcmp(key, "combine") ? combines
				     : !strcmp(key, "cc_mode") ? cc_modes
							       : NULL;
	if (!choices)
		return R5_OK;
	for (int i = 0; choices[i]; i++)
		if (!strcmp(value, choices[i]))
			return R5_OK;
	return r5_set_error(R5_EINVAL, "parameter %s: unknown value '%s'", key, value);
}

/* v (finite) against the key's range and kind; text is the value as given, for the message. */
static r5_status check_range(const struct param_def *d, double v, const char *text)
{
	if (v < d->min || v > d->max)
		return r5_set_error(R5_EINVAL, "parameter %s: %s outside [%g, %g]", d->key, text, d->min, d->max);
	if (d->kind != K_FLOAT && v != floor(v))
		return r5_set_error(R5_EINVAL, "parameter %s: '%s' is not an integer", d->key, text);
	return R5_OK;
}

r5_status r5_recon_params_set(r5_recon_params *p, const char *key, const char *value)
{
	const struct param_def *d = find(key);
	if (!d) {
		char known[512] = "";
		for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
			strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
			strncat(known, defs[i].key, sizeof known - strlen(known) - 1);
		}
		return r5_set_error(R5_EINVAL, "unknown parameter '%s' (known: %s)", key, known);
	}
	char *base = (char *)p + d->offset, *end = NULL;
	if (d->kind == K_STRING) {
		if (strlen(value) >= d->size)
			return r5_set_error(R5_EINVAL, "parameter %s: value too long", key);
		R5_TRY(check_choice(d->key, value));
		strcpy(base, value);
		return R5_OK;
	}
	errno = 0;
	double v = strtod(value, &end);
	/* the whole string, and a finite number: comparisons with NaN are false, so "nan" would pass
	 * any range check below */
	if (errno || end == value || *end != '\0')
		return r5_set_error(R5_EINVAL, "parameter %s: '%s' is not a number", key, value);
	if (!isfinite(v))
		return r5_set_error(R5_EINVAL, "parameter %s: '%s' is not a finite number", key, value);
	R5_TRY(check_range(d, v, value));
	if (d->kind == K_FLOAT)
		*(float *)base = (float)v;
	else
		*(int *)base = (int)v;
	return R5_OK;
}

r5_status r5_recon_params_check(const r5_recon_params *p)
{
	for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
		const struct param_def *d = &defs[i];
		const char *base = (const char *)p + d->offset;
		char text[32];
		if (d->kind == K_STRING) {
			if (!memchr(base, '\0', d->size))
				return r5_set_error(R5_EINVAL, "parameter %s: value not terminated", d->key);
			R5_TRY(check_choice(d->key, base));
			continue;
		}
		double v = d->kind == K_FLOAT ? (double)*(const float *)base : (double)*(const int *)base;
		snprintf(text, sizeof text, "%g", v);
		if (!isfinite(v))
			return r5_set_error(R5_EINVAL, "parameter %s: '%s' is not a finite number", d->key, text);
		R5_TRY(check_range(d, v, text));
	}
	return R5_OK;
}

void r5_recon_params_format(const r5_recon_params *p, char *text, size_t size)
{
	size_t used = 0;
	text[0] = '\0';
	for (size_t i = 0; i < sizeof defs / sizeof defs[0] && used < size; i++) {
		const char *base = (const char *)p + defs[i].offset;
		const char *sep = i ? " " : "";
		int n;
		if (defs[i].kind == K_STRING)
			n = snprintf(text + used, size - used, "%s%s=%s", sep, defs[i].key, base);
		else if (defs[i].kind == K_FLOAT)
			n = snprintf(text + used, size - used, "%s%s=%g", sep, defs[i].key, *(const float *)base);
		else
			n = snprintf(text + used, size - used, "%s%s=%d", sep, defs[i].key, *(const int *)base);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}
