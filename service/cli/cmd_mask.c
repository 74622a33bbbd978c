/* recon5t mask: writes a ky-kz sampling mask as a BART .cfl, for retrospective undersampling
 * experiments (`recon5t recon FULL.cfl --mask MASK.cfl`, or BART's `pics -p`).
 *   recon5t mask --poisson --accel R --calib N --seed S --dims Y,Z --out mask.cfl
 * --poisson: variable-density Poisson disc (phantoms/sampling.h, r5_sampling_poisson; Bridson's
 * dart throwing with an exclusion radius growing with the distance from the centre), the only
 * kind so far and required so that the command line says what it makes. The file has dims
 * [1, Y, Z] and values 1 (sampled) or 0, imaginary part 0, as `bart poisson` writes them.
 * Prints the achieved acceleration. Bad values are usage errors (exit 2) naming the option. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../phantoms/sampling.h"
#include "cli.h"
#include "cli_util.h"
#include "recon/io/cfl.h"

struct mask_args {
	int poisson, ny, nz, calib;
	double accel;
	uint64_t seed;
	const char *out;
};

static void mask_usage(FILE *f)
{
	fprintf(f, "usage: recon5t mask --poisson --accel R --dims Y,Z --out MASK.cfl [options]\n"
		   "  --poisson        variable-density Poisson disc (ky-kz)\n"
		   "  --accel R        acceleration, a real number >= 1 (met within a few %%)\n"
		   "  --dims Y,Z       matrix (Z = 1: variable-density ky lines)\n"
		   "  --calib N        fully sampled N x N centre (default 24)\n"
		   "  --seed S         random seed, an integer >= 0 (default 1): the same seed, the same mask\n"
		   "  --out MASK.cfl   BART .cfl/.hdr, dims [1, Y, Z], values 0/1\n");
}

static int parse_dims(const char *text, struct mask_args *a)
{
	char y[32];
	const char *comma = strchr(text, ',');
	long ny, nz;
	if (!comma || (size_t)(comma - text) >= sizeof y)
		return 0;
	memcpy(y, text, (size_t)(comma - text));
	y[comma - text] = '\0';
	if (!r5_cli_parse_long(y, 1, 65536, &ny) || !r5_cli_parse_long(comma + 1, 1, 65536, &nz))
		return 0;
	a->ny = (int)ny, a->nz = (int)nz;
	return 1;
}

static int parse_mask_value(struct mask_args *a, const char *option, const char *value)
{
	long v;
	char *end;
	if (!strcmp(option, "--accel")) {
		errno = 0;
		a->accel = strtod(value, &end);
		if (end == value || *end || errno || !(a->accel >= 1))
			return r5_cli_fail(2, "mask: --accel wants a number >= 1, got '%s'", value);
	} else if (!strcmp(option, "--dims")) {
		if (!parse_dims(value, a))
			return r5_cli_fail(2, "mask: --dims wants Y,Z (positive integers), got '%s'", value);
	} else if (!strcmp(option, "--calib")) {
		if (!r5_cli_parse_long(value, 0, 65536, &v))
			return r5_cli_fail(2, "mask: --calib wants an integer >= 0, got '%s'", value);
		a->calib = (int)v;
	} else if (!strcmp(option, "--seed")) {
		if (!r5_cli_parse_long(value, 0, 0x7fffffffL, &v))
			return r5_cli_fail(2, "mask: --seed wants an integer in [0, 2^31), got '%s'", value);
		a->seed = (uint64_t)v;
	} else if (!strcmp(option, "--out"))
		a->out = value;
	else
		return r5_cli_fail(2, "mask: unknown option '%s' (see recon5t mask --help)", option);
	return 0;
}

/* 0: parsed; 1: --help printed; 2: usage error (printed). */
static int parse_mask_args(int argc, char **argv, struct mask_args *a)
{
	memset(a, 0, sizeof *a);
	a->calib = 24, a->seed = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			mask_usage(stdout);
			return 1;
		}
		if (!strcmp(argv[i], "--poisson")) {
			a->poisson = 1;
			continue;
		}
		if (argv[i][0] != '-' || i + 1 >= argc)
			return r5_cli_fail(2, "mask: %s '%s' (see recon5t mask --help)",
					   argv[i][0] != '-' ? "unexpected argument" : "no value after", argv[i]);
		int rc = parse_mask_value(a, argv[i], argv[i + 1]);
		if (rc)
			return rc;
		i++;
	}
	if (!a->poisson)
		return r5_cli_fail(2, "mask: say which mask: --poisson (the only kind so far)");
	if (!a->accel || !a->ny || !a->out)
		return r5_cli_fail(2, "mask: --accel, --dims and --out are required (see recon5t mask --help)");
	return 0;
}

int r5_cli_mask(int argc, char **argv)
{
	struct mask_args a;
	int rc = parse_mask_args(argc, argv, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	long n = 0, dims[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
	dims[1] = a.ny, dims[2] = a.nz;
	unsigned char *mask = malloc((size_t)a.ny * (size_t)a.nz);
	r5_array *values = NULL;
	r5_status s = mask ? r5_sampling_poisson(a.ny, a.nz, a.accel, a.calib, a.seed, mask, &n)
			   : r5_set_error(R5_ENOMEM, "mask %d x %d", a.ny, a.nz);
	if (s == R5_OK)
		s = r5_array_alloc_host(dims, &values);
	if (s == R5_OK) {
		for (long i = 0; i < (long)a.ny * a.nz; i++)
			values->data[i] = mask[i] ? 1.0f : 0.0f;
		s = r5_cfl_write(a.out, values);
	}
	if (s == R5_OK)
		printf("mask: poisson %d x %d, calib %d, seed %llu: %ld of %ld sampled, achieved R %.3f (asked %g) -> %s\n",
		       a.ny, a.nz, a.calib, (unsigned long long)a.seed, n, (long)a.ny * a.nz, (double)a.ny * a.nz / n,
		       a.accel, a.out);
	else
		fprintf(stderr, "recon5t mask: %s\n", r5_last_error());
	r5_array_free(values);
	free(mask);
	return s == R5_OK ? 0 : (s == R5_EINVAL ? 2 : 1);
}
