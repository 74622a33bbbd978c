/* Sampling-pattern kinds, `auto`'s choice from them, ESPIRiT's calibration check
 * (sampling_pattern.h).
 *
 * Regularity is tested by translation: a lattice (uniform R_y x R_z, CAIPIRINHA's shifted rows)
 * is mapped onto itself by its lattice vectors, so for a sampled point p the point p + v is
 * sampled too; for a random pattern (Poisson disc, uniform or variable-density random) the
 * chance that p + v is sampled stays near the local density whatever small v is tried. The
 * fully sampled centre is left out of both ends of every pair (it is sampled whatever the
 * pattern), and pairs leaving the matrix do not count. A lattice needs a vector along ky, (dy,
 * 0) with 1 <= dy <= 16, and in 3D one across, (dy, dz) with 1 <= dz <= 8, |dy| <= 8: the two
 * are independent, so together they span a lattice. */
#include "sampling_pattern.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../calib/calib_region.h"

/* Fewer pairs tell nothing (a 2D scan of 128 lines at R = 4 with 20 calibration lines keeps only
 * 12 outside them; a random pattern passes a vector test with 6 pairs at density d with chance
 * d^6, 6e-5 at d = 0.2); fewer points in a density band neither. */
#define MIN_PAIRS 6
#define MIN_BAND_POINTS 16

struct block {
	long y0, y1, z0, z1; /* [y0, y1) x [z0, z1); empty when the centre is not sampled */
};

static int in_block(const struct block *b, long y, long z)
{
	return y >= b->y0 && y < b->y1 && z >= b->z0 && z < b->z1;
}

/* The fraction of pairs (p, p + v), p sampled, both in the matrix and outside the centre block,
 * with p + v sampled; -1 when there are fewer than MIN_PAIRS. dz >= 0. */
static double lattice_hit(const unsigned char *mask, long ny, long nz, const struct block *b, long dy, long dz)
{
	long pairs = 0, hits = 0;
	for (long z = 0; z + dz < nz; z++)
		for (long y = 0; y < ny; y++) {
			long qy = y + dy;
			if (qy < 0 || qy >= ny || !mask[y + ny * z] || in_block(b, y, z) || in_block(b, qy, z + dz))
				continue;
			pairs++;
			hits += mask[qy + ny * (z + dz)] != 0;
		}
	return pairs >= MIN_PAIRS ? (double)hits / (double)pairs : -1;
}

/* 1 when the pattern is a lattice (its vectors in v) or too sparse outside the centre to tell. */
static int find_lattice(const unsigned char *mask, long ny, long nz, const struct block *b, long v[2][2])
{
	int along = 0, across = nz == 1, testable = 0;
	for (long dy = 1; dy <= 16 && dy < ny && !along; dy++) {
		double hit = lattice_hit(mask, ny, nz, b, dy, 0);
		testable |= hit >= 0;
		if (hit >= R5_PATTERN_LATTICE_HIT)
			v[0][0] = dy, v[0][1] = 0, along = 1;
	}
	for (long dz = 1; dz <= 8 && dz < nz && !across; dz++)
		for (long k = 0; k <= 16 && !across; k++) { /* dy = 0, 1, -1, 2, -2, ...: the shortest first */
			long dy = k % 2 ? (k + 1) / 2 : -k / 2;
			double hit = lattice_hit(mask, ny, nz, b, dy, dz);
			testable |= hit >= 0;
			if (hit >= R5_PATTERN_LATTICE_HIT)
				v[1][0] = dy, v[1][1] = dz, across = 1;
		}
	return (along && across) || !testable;
}

/* Sampled fraction in the inner band (rho < 0.5) over the outer (0.5 <= rho <= 1), outside the
 * centre block; -1 when a band has fewer than MIN_BAND_POINTS points, HUGE_VAL when only the outer
 * band is empty of samples. */
static double density_ratio(const unsigned char *mask, long ny, long nz, const struct block *b)
{
	long total[2] = {0, 0}, sampled[2] = {0, 0};
	for (long z = 0; z < nz; z++)
		for (long y = 0; y < ny; y++) {
			if (in_block(b, y, z))
				continue;
			double ry = ny > 1 ? (double)(y - ny / 2) / (ny / 2.0) : 0;
			double rz = nz > 1 ? (double)(z - nz / 2) / (nz / 2.0) : 0;
			double rho2 = ry * ry + rz * rz;
			if (rho2 > 1)
				continue;
			int band = rho2 >= 0.25;
			total[band]++;
			sampled[band] += mask[y + ny * z] != 0;
		}
	if (total[0] < MIN_BAND_POINTS || total[1] < MIN_BAND_POINTS)
		return -1;
	if (!sampled[1])
		return sampled[0] ? HUGE_VAL : -1;
	return ((double)sampled[0] / (double)total[0]) / ((double)sampled[1] / (double)total[1]);
}

r5_status r5_sampling_pattern_classify(const unsigned char *mask, long ny, long nz, r5_sampling_pattern *out)
{
	if (!out)
		return r5_set_error(R5_EINVAL, "sampling pattern: no output");
	memset(out, 0, sizeof *out);
	if (!mask || ny < 1 || nz < 1)
		return r5_set_error(R5_EINVAL, "sampling pattern: no mask or an empty %ld x %ld matrix", ny, nz);
	out->n_total = ny * nz;
	for (long i = 0; i < out->n_total; i++)
		out->n_sampled += mask[i] != 0;
	struct block b = {0, 0, 0, 0};
	if (r5_calib_region_find_mask(mask, ny, nz, out->centre) == R5_OK) {
		b.y0 = ny / 2 - out->centre[0] / 2, b.y1 = b.y0 + out->centre[0];
		b.z0 = nz / 2 - out->centre[1] / 2, b.z1 = b.z0 + out->centre[1];
	} else {
		r5_clear_error(); /* the centre is not sampled: no block */
		out->centre[0] = out->centre[1] = 0;
	}
	out->density_ratio = density_ratio(mask, ny, nz, &b);
	if (out->n_sampled == out->n_total)
		out->kind = R5_PATTERN_FULL;
	else if (find_lattice(mask, ny, nz, &b, out->lattice))
		out->kind = R5_PATTERN_LATTICE;
	else
		out->kind = out->density_ratio >= R5_PATTERN_VD_RATIO ? R5_PATTERN_VARIABLE_DENSITY : R5_PATTERN_UNIFORM_RANDOM;
	return R5_OK;
}

const char *r5_sampling_pattern_kind_name(r5_pattern_kind kind)
{
	switch (kind) {
	case R5_PATTERN_FULL: return "fully sampled";
	case R5_PATTERN_LATTICE: return "regular lattice";
	case R5_PATTERN_VARIABLE_DENSITY: return "irregular, variable density";
	case R5_PATTERN_UNIFORM_RANDOM: return "irregular, uniform density";
	}
	return "?";
}

void r5_sampling_pattern_describe(const r5_sampling_pattern *p, long ny, long nz, char *text, size_t size)
{
	char detail[96] = "";
	if (p->kind == R5_PATTERN_LATTICE && p->lattice[0][0] > 0 && nz > 1)
		snprintf(detail, sizeof detail, " (vectors (%ld, %ld) and (%ld, %ld))", p->lattice[0][0], p->lattice[0][1],
			 p->lattice[1][0], p->lattice[1][1]);
	else if (p->kind == R5_PATTERN_LATTICE && p->lattice[0][0] > 0)
		snprintf(detail, sizeof detail, " (step %ld)", p->lattice[0][0]);
	else if ((p->kind == R5_PATTERN_VARIABLE_DENSITY || p->kind == R5_PATTERN_UNIFORM_RANDOM) && p->density_ratio >= 0)
		snprintf(detail, sizeof detail, " (inner/outer density %.2f)", p->density_ratio);
	else if (p->kind == R5_PATTERN_VARIABLE_DENSITY || p->kind == R5_PATTERN_UNIFORM_RANDOM)
		snprintf(detail, sizeof detail, " (density falloff not measurable)");
	snprintf(text, size, "%s%s, %ld x %ld fully sampled centre, %.1f%% of %ld x %ld sampled",
		 r5_sampling_pattern_kind_name(p->kind), detail, p->centre[0], p->centre[1],
		 100.0 * (double)p->n_sampled / (double)p->n_total, ny, nz);
}

static int centre_for_cs(const r5_sampling_pattern *p, long ny, long nz)
{
	long n[2] = {ny, nz};
	for (int d = 0; d < 2; d++) {
		long want = n[d] < R5_PATTERN_CS_CENTRE ? n[d] : R5_PATTERN_CS_CENTRE;
		if (n[d] > 1 && p->centre[d] < want)
			return 0;
	}
	return 1;
}

const char *r5_sampling_pattern_auto_choice(const r5_scan *scan, char *reason, size_t size)
{
	char scratch[8], what[256] = "unknown";
	if (!reason || !size)
		reason = scratch, size = sizeof scratch;
	const r5_header *h = &scan->header;
	long ny = scan->mask_dims[R5_DIM_Y], nz = scan->mask_dims[R5_DIM_Z];
	r5_sampling_pattern p;
	int known = scan->sampled && r5_sampling_pattern_classify(scan->sampled, ny, nz, &p) == R5_OK;
	if (known)
		r5_sampling_pattern_describe(&p, ny, nz, what, sizeof what);
	else
		r5_clear_error();
	int irregular = known && (p.kind == R5_PATTERN_VARIABLE_DENSITY || p.kind == R5_PATTERN_UNIFORM_RANDOM);
	if (irregular && centre_for_cs(&p, ny, nz) && (double)p.n_sampled <= R5_PATTERN_CS_MAX_FRACTION * (double)p.n_total) {
		snprintf(reason, size, "sampling %s", what);
		return "cs";
	}
	const char *why_not_cs = !irregular ? ""
				 : centre_for_cs(&p, ny, nz) ? "; nearly full, so not cs"
							     : "; no fully sampled centre, so not cs";
	if (h->accel[0] > 1 || h->accel[1] > 1) {
		snprintf(reason, size, "header acceleration %d x %d; sampling %s%s", h->accel[0], h->accel[1], what,
			 why_not_cs);
		return "sense";
	}
	long n = 1, sampled = 0;
	for (int d = 0; d < R5_DIMS; d++)
		n *= scan->mask_dims[d];
	for (long i = 0; scan->sampled && i < n; i++)
		sampled += scan->sampled[i] != 0;
	/* partial Fourier leaves up to ~45% of lines out on one side: that is still cartesian */
	const char *choice = n > 0 && sampled < 0.5 * n ? "sense" : "cartesian";
	snprintf(reason, size, "%s sampled (%s); sampling %s%s", n > 0 && sampled < 0.5 * n ? "under half" : "half or more",
		 choice, what, why_not_cs);
	return choice;
}

r5_status r5_sampling_pattern_check_calib(const r5_scan *scan, const char *pipeline, int kernel, int calib_cap)
{
	if (!pipeline || (strcmp(pipeline, "sense") && strcmp(pipeline, "cs")))
		return R5_OK;
	if (!scan || !scan->sampled)
		return r5_set_error(R5_EINVAL, "%s: the scan has no sampling mask", pipeline);
	long n[2] = {scan->mask_dims[R5_DIM_Y], scan->mask_dims[R5_DIM_Z]}, centre[2] = {0, 0};
	if (r5_calib_region_find_mask(scan->sampled, n[0], n[1], centre) != R5_OK) {
		r5_clear_error();
		centre[0] = centre[1] = 0;
	}
	long need[2];
	int short_of = 0, cap_short = 0;
	for (int d = 0; d < 2; d++) {
		need[d] = n[d] < 2L * kernel ? n[d] : 2L * kernel;
		if (n[d] > 1 && centre[d] < need[d])
			short_of = 1;
		if (n[d] > 1 && calib_cap > 0 && calib_cap < need[d])
			cap_short = 1;
	}
	char found[96], needed[48];
	if (centre[0] == 0)
		snprintf(found, sizeof found, "the k-space centre (ky %ld, kz %ld) is not sampled", n[0] / 2, n[1] / 2);
	else if (n[1] == 1)
		snprintf(found, sizeof found, "the fully sampled centre is %ld ky line%s", centre[0], centre[0] == 1 ? "" : "s");
	else
		snprintf(found, sizeof found, "the largest fully sampled centred block is %ld x %ld (ky x kz)", centre[0],
			 centre[1]);
	if (n[1] == 1)
		snprintf(needed, sizeof needed, "%ld lines", need[0]);
	else
		snprintf(needed, sizeof needed, "%ld x %ld", need[0], need[1]);
	if (short_of)
		return r5_set_error(R5_EINVAL,
				    "%s: the sampling has no fully sampled calibration region wide enough for ESPIRiT: %s; "
				    "kernel %d needs at least %s (2 x kernel) — sample the k-space centre fully (e.g. recon5t "
				    "mask --calib 24) or set a smaller kernel",
				    pipeline, found, kernel, needed);
	if (cap_short)
		return r5_set_error(R5_EINVAL,
				    "%s: parameter calib %d cuts the calibration region below the %s ESPIRiT's kernel %d needs "
				    "(2 x kernel)",
				    pipeline, calib_cap, needed, kernel);
	return R5_OK;
}
