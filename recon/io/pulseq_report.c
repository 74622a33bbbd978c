/* The seq-report numbers, their text and JSON forms, and the trajectory picture
 * (pulseq_report.h). Everything is computed from pulseq_kspace.h's k at every ADC sample and its
 * grid classification, so the report describes exactly what the phantom and the scan builder see. */
#include "pulseq_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "png.h"

#define PI 3.14159265358979323846

const char *r5_seq_report_signature_name(r5_seq_report_signature signature)
{
	switch (signature) {
	case R5_SEQ_REPORT_SIGNATURE_VERIFIED: return "verified";
	case R5_SEQ_REPORT_SIGNATURE_WRONG: return "wrong";
	default: return "missing";
	}
}

static int line_kind(r5_seq_kind kind)
{
	return kind == R5_SEQ_CARTESIAN || kind == R5_SEQ_EPI || kind == R5_SEQ_EPI_RAMP;
}

static void extent_and_resolution(const r5_seq_kspace *ks, r5_seq_report *r)
{
	for (int d = 0; d < 3; d++)
		r->kmin_m[d] = INFINITY, r->kmax_m[d] = -INFINITY;
	for (long i = 0; i < ks->n_samples; i++)
		for (int d = 0; d < 3; d++) {
			r->kmin_m[d] = fmin(r->kmin_m[d], ks->k[3 * i + d]);
			r->kmax_m[d] = fmax(r->kmax_m[d], ks->k[3 * i + d]);
		}
	for (int d = 0; d < 3; d++) {
		if (ks->n_samples == 0)
			r->kmin_m[d] = r->kmax_m[d] = 0.0;
		r->kmin_cycles[d] = r->grid.kmin[d], r->kmax_cycles[d] = r->grid.kmax[d];
		double kabs = fmax(fabs(r->kmin_m[d]), fabs(r->kmax_m[d])), span = r->kmax_m[d] - r->kmin_m[d];
		int used = d < r->n_axes;
		/* k in 1/m, so 1/k is in m: * 1e3 for mm */
		r->res_nominal_mm[d] = used && kabs > 0 ? 1e3 / (2.0 * kabs) : NAN;
		r->res_extent_mm[d] = used && span > 0 ? 1e3 / span : NAN;
		r->res_voxel_mm[d] = used && r->fov_mm[d] > 0 ? r->fov_mm[d] / r->grid.matrix[d] : NAN;
	}
}

static int cmp_long3(const void *a, const void *b)
{
	const long *x = a, *y = b;
	for (int i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

/* Is (slice, i1, i2) among the sorted distinct triples? */
static int has_line(const long *lines, long n, long slice, long i1, long i2)
{
	long key[3] = {slice, i1, i2};
	return bsearch(key, lines, (size_t)n, sizeof(long[3]), cmp_long3) != NULL;
}

/* Lines acquired on the k1 (x k2) grid, R, and the fully sampled run through the centre (in the
 * first slice: every slice of these files repeats the same lines). */
static r5_status count_lines(const r5_seq_kspace *ks, r5_seq_report *r)
{
	long n = ks->n_readouts;
	long *lines = malloc(sizeof(long[3]) * (size_t)(n > 0 ? n : 1));
	if (!lines)
		return r5_set_error(R5_ENOMEM, "seq-report: %ld readouts", n);
	for (long i = 0; i < n; i++) {
		const r5_seq_readout *ro = &ks->readouts[i];
		double c[3];
		r5_seq_kspace_cycles(ks, ro->first + ro->n / 2, c);
		lines[3 * i] = ro->slice;
		lines[3 * i + 1] = lround(c[1] - r->grid.offset[1]);
		lines[3 * i + 2] = r->two_d ? 0 : lround(c[2] - r->grid.offset[2]);
	}
	qsort(lines, (size_t)n, sizeof(long[3]), cmp_long3);
	long distinct = 0;
	for (long i = 0; i < n; i++)
		if (!distinct || cmp_long3(lines + 3 * i, lines + 3 * (distinct - 1)))
			memmove(lines + 3 * distinct++, lines + 3 * i, sizeof(long[3]));
	r->n_lines = distinct;
	r->n_grid_lines = (long)r->grid.matrix[1] * r->grid.matrix[2] * r->n_slices;
	r->accel = distinct ? (double)r->n_grid_lines / (double)distinct : NAN;
	long slice = distinct ? lines[0] : 0;
	for (int axis = 0; axis < 2; axis++) {
		long half = r->grid.matrix[1 + axis], run = 0;
		if (axis == 1 && r->two_d) {
			r->centre_lines[1] = 1;
			break;
		}
		if (has_line(lines, distinct, slice, 0, 0)) {
			run = 1;
			for (long j = 1; j <= half && has_line(lines, distinct, slice, axis ? 0 : j, axis ? j : 0); j++)
				run++;
			for (long j = 1; j <= half && has_line(lines, distinct, slice, axis ? 0 : -j, axis ? -j : 0); j++)
				run++;
		}
		r->centre_lines[axis] = run;
	}
	int wide = 1;
	for (int axis = 0; axis < (r->two_d ? 1 : 2); axis++)
		wide = wide && (r->centre_lines[axis] >= R5_SEQ_REPORT_CALIB_LINES ||
				r->centre_lines[axis] >= r->grid.matrix[1 + axis]);
	r->centre_full = wide;
	free(lines);
	return R5_OK;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* A readout that is a straight line through the origin (0.05 cycles: the simulated trajectories
 * are exact; a measured one with delays would need more), and whether it starts or ends there. */
static int spoke_of(const r5_seq_kspace *ks, const r5_seq_readout *ro, double *angle, int *half)
{
	double a[3], b[3];
	r5_seq_kspace_cycles(ks, ro->first, a);
	r5_seq_kspace_cycles(ks, ro->first + ro->n - 1, b);
	double ux = b[0] - a[0], uy = b[1] - a[1], len = hypot(ux, uy);
	if (ro->n < 2 || !(len > 1.0))
		return 0;
	ux /= len, uy /= len;
	for (long i = ro->first; i < ro->first + ro->n; i++) {
		double c[3];
		r5_seq_kspace_cycles(ks, i, c);
		if (fabs(c[0] * uy - c[1] * ux) > 0.05)
			return 0;
	}
	*half = hypot(a[0], a[1]) < 1.0 || hypot(b[0], b[1]) < 1.0;
	*angle = atan2(uy, ux);
	return 1;
}

/* Spokes, distinct angles and the largest gap (2D non-Cartesian). */
static r5_status count_spokes(const r5_seq_kspace *ks, r5_seq_report *r)
{
	long n = ks->n_readouts;
	double *angles = malloc(sizeof *angles * (size_t)(n > 0 ? n : 1));
	if (!angles)
		return r5_set_error(R5_ENOMEM, "seq-report: %ld spokes", n);
	int radial = n > 0 && r->two_d, half_all = 1;
	for (long i = 0; i < n && radial; i++) {
		int half = 0;
		radial = spoke_of(ks, &ks->readouts[i], &angles[i], &half);
		half_all = half_all && half;
	}
	r->radial = radial;
	if (radial) {
		/* a spoke through the centre and its reverse are one line: angles modulo pi */
		double period = half_all ? 2.0 * PI : PI;
		for (long i = 0; i < n; i++)
			angles[i] = fmod(fmod(angles[i], period) + period, period);
		qsort(angles, (size_t)n, sizeof *angles, cmp_double);
		double tol = 1e-3 * period / (double)n;
		long distinct = 0;
		for (long i = 0; i < n; i++)
			if (!distinct || angles[i] - angles[distinct - 1] > tol)
				angles[distinct++] = angles[i];
		if (distinct > 1 && angles[0] + period - angles[distinct - 1] <= tol)
			distinct--; /* 0 and period are one angle */
		double gap = distinct ? angles[0] + period - angles[distinct - 1] : period;
		for (long i = 1; i < distinct; i++)
			gap = fmax(gap, angles[i] - angles[i - 1]);
		r->n_spokes = n;
		r->n_angles = distinct;
		r->max_gap_rad = gap;
		r->even_gap_rad = period / (double)(distinct ? distinct : 1);
		/* Nyquist at the edge of k-space: arc spacing 1 cycle at radius N/2 over the period */
		r->nyquist_spokes = (half_all ? PI : PI / 2.0) * r->grid.matrix[0];
		r->radial_accel = r->nyquist_spokes / ((double)n / (double)r->n_slices);
	}
	free(angles);
	return R5_OK;
}

static long wrap(long i, long n)
{
	return ((i + n / 2) % n + n) % n;
}

r5_status r5_seq_report_line_mask(const r5_seq_kspace *ks, const r5_seq_grid *grid, unsigned char *mask)
{
	if (!ks || !grid || !mask || !line_kind(grid->kind))
		return r5_set_error(R5_EINVAL, "seq-report: a line mask needs a Cartesian or EPI trajectory");
	long ny = grid->matrix[1], nz = grid->matrix[2];
	memset(mask, 0, (size_t)ny * (size_t)nz);
	for (long r = 0; r < ks->n_readouts; r++) {
		const r5_seq_readout *ro = &ks->readouts[r];
		double c[3];
		if (ro->slice != 0)
			continue;
		r5_seq_kspace_cycles(ks, ro->first + ro->n / 2, c);
		long y = wrap(lround(c[1] - grid->offset[1]), ny);
		long z = grid->two_d ? 0 : wrap(lround(c[2] - grid->offset[2]), nz);
		mask[y + ny * z] = 1;
	}
	return R5_OK;
}

static void sampling_density(const r5_seq_kspace *ks, r5_seq_report *r)
{
	double points;
	if (line_kind(r->grid.kind)) {
		points = 1.0;
		for (int d = 0; d < r->n_axes; d++)
			points *= floor(r->kmax_cycles[d] - r->kmin_cycles[d] + 1e-6) + 1.0;
	} else {
		double radius = 0.0;
		for (long i = 0; i < ks->n_samples; i++) {
			double c[3];
			r5_seq_kspace_cycles(ks, i, c);
			radius = fmax(radius, sqrt(c[0] * c[0] + c[1] * c[1] + (r->two_d ? 0.0 : c[2] * c[2])));
		}
		points = r->two_d ? PI * radius * radius : 4.0 / 3.0 * PI * radius * radius * radius;
	}
	r->density = points > 0 ? (double)ks->n_samples / (points * (double)r->n_slices) : NAN;
}

static void pipeline_words(r5_seq_report *r)
{
	switch (r->grid.kind) {
	case R5_SEQ_CARTESIAN:
	case R5_SEQ_EPI:
		r->pipeline = "cartesian";
		if (r->accel > 1.0 + 1e-9)
			snprintf(r->pipeline_text, sizeof r->pipeline_text,
				 "cartesian grid, R %.2f: parallel imaging (sense; grappa) %s", r->accel,
				 r->centre_full ? "calibrating from the fully sampled centre"
						: "- but the centre is too narrow to calibrate from (needs separate calibration)");
		else
			snprintf(r->pipeline_text, sizeof r->pipeline_text,
				 "cartesian grid, fully sampled: FFT per coil and coil combination (pipeline cartesian)%s",
				 r->grid.kind == R5_SEQ_EPI ? "; reversed lines flipped by the scan builder" : "");
		break;
	case R5_SEQ_EPI_RAMP:
		r->pipeline = "cartesian after readout regridding";
		snprintf(r->pipeline_text, sizeof r->pipeline_text,
			 "lines on the k1 grid, readout samples not: each line regridded onto the %d-point readout grid "
			 "(the phantom writes them with a 1D readout trajectory for the scan builder), then cartesian%s",
			 r->grid.matrix[0],
			 r->accel > 1.0 + 1e-9 ? " (or sense/grappa for the missing lines)" : "");
		break;
	default:
		r->pipeline = "non-cartesian";
		snprintf(r->pipeline_text, sizeof r->pipeline_text,
			 "NUFFT pipelines: sense (CG-SENSE with NLINV coil maps) for one frame of several coils, grid "
			 "(gridding with density compensation, fast) for frames or one coil; cs with a regulariser");
	}
}

r5_status r5_seq_report_compute(const char *file, const r5_seq *seq, const r5_seq_kspace *ks,
				r5_seq_report_signature signature, r5_seq_report *r)
{
	memset(r, 0, sizeof *r);
	if (!seq || !ks)
		return r5_set_error(R5_EINVAL, "seq-report: no sequence");
	snprintf(r->file, sizeof r->file, "%s", file ? file : "");
	snprintf(r->version, sizeof r->version, "%d.%d.%s", seq->major, seq->minor,
		 seq->revision[0] ? seq->revision : "0");
	const char *name = r5_seq_definition_get(seq, "Name");
	snprintf(r->name, sizeof r->name, "%s", name ? name : "");
	r->signature = signature;
	r->duration_s = r5_seq_duration(seq);
	double total;
	r->total_duration_s = r5_seq_definition_numbers(seq, "TotalDuration", &total, 1) == 1 ? total : NAN;
	r->n_blocks = seq->n_blocks;
	r->n_excitations = ks->n_excitations, r->n_refocusing = ks->n_refocusing;
	r->n_readouts = ks->n_readouts, r->n_samples = ks->n_samples, r->n_slices = ks->n_slices;
	for (int d = 0; d < 3; d++)
		r->fov_mm[d] = ks->fov_m[d] * 1e3;
	r5_seq_kspace_grid(ks, &r->grid);
	r->two_d = r->grid.two_d;
	r->n_axes = r->two_d ? 2 : 3;
	extent_and_resolution(ks, r);
	r->readout_half_sample = line_kind(r->grid.kind) && fabs(fabs(r->grid.offset[0]) - 0.5) < 1e-3;
	r->accel = r->radial_accel = r->max_gap_rad = r->even_gap_rad = r->nyquist_spokes = NAN;
	if (ks->n_readouts > 0 && line_kind(r->grid.kind))
		R5_TRY(count_lines(ks, r));
	else if (ks->n_readouts > 0)
		R5_TRY(count_spokes(ks, r));
	sampling_density(ks, r);
	pipeline_words(r);
	return R5_OK;
}

/* --- text --- */

static const char *const axis_names[3] = {"x", "y", "z"};

static void text_number(FILE *out, const char *format, double v)
{
	if (isfinite(v))
		fprintf(out, format, v);
	else
		fprintf(out, "%*s", atoi(format + 1), "-");
}

static void write_text_kspace(FILE *out, const r5_seq_report *r)
{
	fprintf(out, "k-space      axis  k min..max (1/m)       cycles/FOV          res nominal  res extent  "
		     "FOV/matrix  matrix  offset\n");
	for (int d = 0; d < 3; d++) {
		fprintf(out, "             %-4s  %9.2f .. %-9.2f  %8.3f .. %-8.3f", axis_names[d], r->kmin_m[d], r->kmax_m[d],
			r->kmin_cycles[d], r->kmax_cycles[d]);
		text_number(out, "%9.3f mm", r->res_nominal_mm[d]);
		text_number(out, "%9.3f mm", r->res_extent_mm[d]);
		text_number(out, "%9.3f mm", r->res_voxel_mm[d]);
		fprintf(out, "  %6d  %+.4f\n", r->grid.matrix[d], r->grid.offset[d]);
	}
	fprintf(out, "             (res nominal = 1/(2 max|k|), the protocol's resolution; res extent = "
		     "1/(k max - k min), the span covered%s)\n",
		r->two_d ? "; z of a 2D sequence is the slice: FOV z is its thickness" : "");
	if (r->readout_half_sample)
		fprintf(out, "             readout offset %+.4f: the ADC samples at (n + 1/2) dwell put the readout's samples "
			     "half-way between grid points (k = +-0.5, +-1.5, ...): a linear phase, exact for the FFT\n",
			r->grid.offset[0]);
}

static void write_text_sampling(FILE *out, const r5_seq_report *r)
{
	const r5_seq_grid *g = &r->grid;
	fprintf(out, "trajectory   %s", r5_seq_kind_name(g->kind));
	if (g->kind == R5_SEQ_EPI || g->kind == R5_SEQ_EPI_RAMP)
		fprintf(out, " (%ld of %ld readouts reversed)", g->n_reversed, r->n_readouts);
	fprintf(out, ", max grid error %.2e cycles, k1 spread within a readout %.2e cycles\n", g->max_grid_error,
		g->line_error);
	if (line_kind(g->kind)) {
		if (r->two_d)
			fprintf(out, "sampling     %ld lines of the %d-line k1 grid", r->n_lines, g->matrix[1]);
		else
			fprintf(out, "sampling     %ld lines of the %d x %d k1-k2 grid", r->n_lines, g->matrix[1], g->matrix[2]);
		if (r->n_slices > 1)
			fprintf(out, " x %ld slices", r->n_slices);
		fprintf(out, ": R %.3f; centre: %ld", r->accel, r->centre_lines[0]);
		if (!r->two_d)
			fprintf(out, " x %ld", r->centre_lines[1]);
		fprintf(out, " lines fully sampled (%s)\n", r->centre_full ? "enough to calibrate" : "too few to calibrate");
	} else if (r->radial) {
		fprintf(out, "sampling     radial: %ld spokes (%ld per slice), %ld distinct angles, largest gap %.6f rad "
			     "(%.3f x the even %.6f); Nyquist %.1f spokes (pi/2 N, N = %d): R %.3f\n",
			r->n_spokes, r->n_spokes / r->n_slices, r->n_angles, r->max_gap_rad, r->max_gap_rad / r->even_gap_rad,
			r->even_gap_rad, r->nyquist_spokes, g->matrix[0], r->radial_accel);
	} else {
		fprintf(out, "sampling     %ld readouts, not straight spokes: no angular statistics\n", r->n_readouts);
	}
	for (int d = 1; line_kind(g->kind) && d < r->n_axes; d++)
		if (lround(r->kmax_cycles[d] - g->offset[d]) == g->matrix[d] / 2)
			fprintf(out, "             k%d reaches +%d = N/2 (%s): on the %d-point grid it is the same frequency as "
				     "-N/2, where the scan builder puts it\n", d, g->matrix[d] / 2,
				r->n_refocusing > 0 ? "a refocusing pulse negated the phase encoding" : "an asymmetric range",
				g->matrix[d]);
	fprintf(out, "density      %.3f samples per grid point inside the sampled %s (per slice)\n", r->density,
		line_kind(g->kind) ? "box" : r->two_d ? "disc" : "ball");
}

r5_status r5_seq_report_write_text(FILE *out, const r5_seq_report *r)
{
	fprintf(out, "file         %s\n", r->file);
	fprintf(out, "sequence     Pulseq %s, name '%s', signature %s\n", r->version, r->name,
		r5_seq_report_signature_name(r->signature));
	fprintf(out, "duration     %.6f s from the blocks; TotalDuration ", r->duration_s);
	if (isfinite(r->total_duration_s))
		fprintf(out, "%.6f s (difference %.2e s)\n", r->total_duration_s, r->duration_s - r->total_duration_s);
	else
		fprintf(out, "absent\n");
	fprintf(out, "events       %ld blocks; RF %ld excitations, %ld refocusing; ADC %ld events, %ld samples; "
		     "%ld slice%s\n", r->n_blocks, r->n_excitations, r->n_refocusing, r->n_readouts, r->n_samples,
		r->n_slices, r->n_slices == 1 ? "" : "s");
	fprintf(out, "FOV          %.1f x %.1f x %.1f mm (%s)\n", r->fov_mm[0], r->fov_mm[1], r->fov_mm[2],
		r->two_d ? "2D" : "3D");
	write_text_kspace(out, r);
	write_text_sampling(out, r);
	fprintf(out, "pipeline     %s: %s\n", r->pipeline, r->pipeline_text);
	if (r->auto_coils > 0) {
		fprintf(out, "auto         with %d coils: %s (%s)\n", r->auto_coils, r->auto_pipeline, r->auto_reason);
		if (r->auto_phantom[0])
			fprintf(out, "             checked on a %d-coil phantom of this sequence: %s%s\n", r->auto_coils,
				r->auto_phantom, strcmp(r->auto_phantom, r->auto_pipeline) ? " - DIFFERS from the rule" : "");
		else if (r->auto_phantom_error[0])
			fprintf(out, "             a %d-coil phantom of this sequence could not be reconstructed: %s\n",
				r->auto_coils, r->auto_phantom_error);
	}
	return ferror(out) ? r5_set_error(R5_EIO, "seq-report: writing the report failed") : R5_OK;
}

/* --- JSON --- */

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_number(FILE *out, double v)
{
	if (isfinite(v))
		fprintf(out, "%.10g", v);
	else
		fprintf(out, "null");
}

static void json_key(FILE *out, const char *key)
{
	fprintf(out, ",\n  ");
	json_string(out, key);
	fprintf(out, ": ");
}

static void json_vec(FILE *out, const char *key, const double *v, int n)
{
	json_key(out, key);
	for (int i = 0; i < n; i++) {
		fprintf(out, i ? ", " : "[");
		json_number(out, v[i]);
	}
	fprintf(out, "]");
}

static void json_num(FILE *out, const char *key, double v)
{
	json_key(out, key);
	json_number(out, v);
}

static void json_text(FILE *out, const char *key, const char *v)
{
	json_key(out, key);
	json_string(out, v);
}

static void write_json_sampling(FILE *out, const r5_seq_report *r)
{
	const r5_seq_grid *g = &r->grid;
	json_text(out, "kind", r5_seq_kind_name(g->kind));
	json_num(out, "reversed_readouts", (double)g->n_reversed);
	json_num(out, "max_grid_error_cycles", g->max_grid_error);
	json_num(out, "line_error_cycles", g->line_error);
	json_vec(out, "offset_cycles", g->offset, 3);
	json_key(out, "readout_half_sample_offset");
	fprintf(out, r->readout_half_sample ? "true" : "false");
	double matrix[3] = {g->matrix[0], g->matrix[1], g->matrix[2]};
	json_vec(out, "matrix", matrix, 3);
	json_key(out, "lines");
	if (line_kind(g->kind))
		fprintf(out, "{\"acquired\": %ld, \"grid\": %ld, \"grid_dims\": [%d, %d], \"accel\": %.10g, "
			     "\"centre_lines\": [%ld, %ld], \"centre_full\": %s}",
			r->n_lines, r->n_grid_lines, g->matrix[1], g->matrix[2], r->accel, r->centre_lines[0],
			r->centre_lines[1], r->centre_full ? "true" : "false");
	else
		fprintf(out, "null");
	json_key(out, "spokes");
	if (r->radial)
		fprintf(out, "{\"spokes\": %ld, \"per_slice\": %ld, \"distinct_angles\": %ld, \"max_gap_rad\": %.10g, "
			     "\"even_gap_rad\": %.10g, \"nyquist_spokes\": %.10g, \"accel\": %.10g}",
			r->n_spokes, r->n_spokes / r->n_slices, r->n_angles, r->max_gap_rad, r->even_gap_rad,
			r->nyquist_spokes, r->radial_accel);
	else
		fprintf(out, "null");
	json_num(out, "density", r->density);
	json_text(out, "density_region", line_kind(g->kind) ? "box" : r->two_d ? "disc" : "ball");
}

r5_status r5_seq_report_write_json(FILE *out, const r5_seq_report *r)
{
	fprintf(out, "{\n  \"file\": ");
	json_string(out, r->file);
	json_text(out, "version", r->version);
	json_text(out, "name", r->name);
	json_text(out, "signature", r5_seq_report_signature_name(r->signature));
	json_num(out, "duration_s", r->duration_s);
	json_num(out, "total_duration_s", r->total_duration_s);
	json_num(out, "blocks", (double)r->n_blocks);
	json_num(out, "rf_excitations", (double)r->n_excitations);
	json_num(out, "rf_refocusing", (double)r->n_refocusing);
	json_num(out, "adc_events", (double)r->n_readouts);
	json_num(out, "adc_samples", (double)r->n_samples);
	json_num(out, "slices", (double)r->n_slices);
	json_key(out, "two_d");
	fprintf(out, r->two_d ? "true" : "false");
	json_vec(out, "fov_mm", r->fov_mm, 3);
	json_vec(out, "kmin_per_m", r->kmin_m, 3);
	json_vec(out, "kmax_per_m", r->kmax_m, 3);
	json_vec(out, "kmin_cycles", r->kmin_cycles, 3);
	json_vec(out, "kmax_cycles", r->kmax_cycles, 3);
	json_vec(out, "resolution_nominal_mm", r->res_nominal_mm, 3);
	json_vec(out, "resolution_extent_mm", r->res_extent_mm, 3);
	json_vec(out, "voxel_mm", r->res_voxel_mm, 3);
	json_text(out, "resolution_note", "nominal = 1/(2 max|k|); extent = 1/(k max - k min); voxel = FOV/matrix");
	write_json_sampling(out, r);
	json_text(out, "pipeline", r->pipeline);
	json_text(out, "pipeline_text", r->pipeline_text);
	if (r->auto_coils > 0) {
		json_key(out, "auto");
		fprintf(out, "{\"coils\": %d, \"pipeline\": ", r->auto_coils);
		json_string(out, r->auto_pipeline);
		fprintf(out, ", \"reason\": ");
		json_string(out, r->auto_reason);
		fprintf(out, ", \"phantom\": ");
		if (r->auto_phantom[0])
			json_string(out, r->auto_phantom);
		else
			fprintf(out, "null");
		fprintf(out, ", \"phantom_error\": ");
		if (r->auto_phantom_error[0])
			json_string(out, r->auto_phantom_error);
		else
			fprintf(out, "null");
		fprintf(out, "}");
	}
	fprintf(out, "\n}\n");
	return ferror(out) ? r5_set_error(R5_EIO, "seq-report: writing the JSON failed") : R5_OK;
}

/* --- the trajectory picture --- */

typedef struct canvas {
	unsigned char *rgb;
	long width, height;
} canvas;

static void put(canvas *c, long x, long y, const unsigned char colour[3])
{
	if (x < 0 || y < 0 || x >= c->width || y >= c->height)
		return;
	memcpy(c->rgb + 3 * (y * c->width + x), colour, 3);
}

/* A straight line of pixels (steps of at most one pixel along the longer axis). */
static void line(canvas *c, double x0, double y0, double x1, double y1, const unsigned char colour[3])
{
	double steps = fmax(fabs(x1 - x0), fabs(y1 - y0));
	long n = (long)ceil(steps);
	if (n > 4 * (c->width + c->height))
		n = 4 * (c->width + c->height);
	for (long i = 0; i <= n; i++) {
		double u = n ? (double)i / (double)n : 0.0;
		put(c, lround(x0 + u * (x1 - x0)), lround(y0 + u * (y1 - y0)), colour);
	}
}

/* Blue -> cyan -> green -> yellow -> red over u in [0, 1]: acquisition order at a glance. */
static void time_colour(double u, unsigned char out[3])
{
	static const double stops[5][3] = {{30, 60, 220}, {0, 180, 220}, {20, 170, 40}, {230, 190, 0}, {220, 20, 20}};
	u = u < 0 ? 0 : u > 1 ? 1 : u;
	double s = u * 4.0;
	int i = s >= 4.0 ? 3 : (int)s;
	double f = s - i;
	for (int j = 0; j < 3; j++)
		out[j] = (unsigned char)lround(stops[i][j] + f * (stops[i + 1][j] - stops[i][j]));
}

typedef struct panel {
	long x0, size;      /* left edge and width = height, pixels */
	int axis_h, axis_v; /* k axes across and up */
	double scale;       /* pixels per cycle */
} panel;

static void to_pixel(const panel *p, const double c[3], double *x, double *y)
{
	*x = (double)p->x0 + 0.5 * (double)p->size + c[p->axis_h] * p->scale;
	*y = 0.5 * (double)p->size - c[p->axis_v] * p->scale; /* k up */
}

static void draw_frame(canvas *cv, const panel *p, const r5_seq_grid *g)
{
	static const unsigned char axis[3] = {150, 150, 150}, grid[3] = {215, 215, 215};
	double hx = 0.5 * g->matrix[p->axis_h], hy = 0.5 * g->matrix[p->axis_v];
	double corners[4][3] = {{0}};
	corners[0][p->axis_h] = -hx, corners[0][p->axis_v] = -hy;
	corners[1][p->axis_h] = hx, corners[1][p->axis_v] = -hy;
	corners[2][p->axis_h] = hx, corners[2][p->axis_v] = hy;
	corners[3][p->axis_h] = -hx, corners[3][p->axis_v] = hy;
	for (int i = 0; i < 4; i++) {
		double xa, ya, xb, yb;
		to_pixel(p, corners[i], &xa, &ya);
		to_pixel(p, corners[(i + 1) % 4], &xb, &yb);
		line(cv, xa, ya, xb, yb, grid);
	}
	double mid = 0.5 * (double)p->size;
	line(cv, (double)p->x0, mid, (double)(p->x0 + p->size - 1), mid, axis);
	line(cv, (double)p->x0 + mid, 0, (double)p->x0 + mid, (double)(p->size - 1), axis);
}

static void draw_samples(canvas *cv, const panel *p, const r5_seq_kspace *ks)
{
	/* faint joins first, so that every sample's dot lies on top */
	for (long r = 0; r < ks->n_readouts; r++) {
		const r5_seq_readout *ro = &ks->readouts[r];
		unsigned char colour[3], faint[3];
		time_colour((double)ro->first / (double)(ks->n_samples > 1 ? ks->n_samples - 1 : 1), colour);
		for (int j = 0; j < 3; j++)
			faint[j] = (unsigned char)(255 - (255 - colour[j]) / 3);
		double xa = 0, ya = 0;
		for (long i = ro->first; i < ro->first + ro->n; i++) {
			double c[3], x, y;
			r5_seq_kspace_cycles(ks, i, c);
			to_pixel(p, c, &x, &y);
			if (i > ro->first)
				line(cv, xa, ya, x, y, faint);
			xa = x, ya = y;
		}
	}
	/* dots of 3 x 3 pixels while they are sparse enough to stay apart, single pixels otherwise */
	int radius = ks->n_samples * 36L < (long)p->size * p->size ? 1 : 0;
	for (long i = 0; i < ks->n_samples; i++) {
		double c[3], x, y;
		unsigned char colour[3];
		r5_seq_kspace_cycles(ks, i, c);
		to_pixel(p, c, &x, &y);
		time_colour((double)i / (double)(ks->n_samples > 1 ? ks->n_samples - 1 : 1), colour);
		for (int dy = -radius; dy <= radius; dy++)
			for (int dx = -radius; dx <= radius; dx++)
				put(cv, p->x0 + lround(x - (double)p->x0) + dx, lround(y) + dy, colour);
	}
}

r5_status r5_seq_report_png(const char *path, const r5_seq_kspace *ks, const r5_seq_grid *grid, int size)
{
	if (!path || !ks || !grid)
		return r5_set_error(R5_EINVAL, "seq-report PNG: need a path, a trajectory and its grid");
	if (size < 64 || size > 8192)
		return r5_set_error(R5_EINVAL, "seq-report PNG %s: size %d is outside 64..8192", path, size);
	int panels = grid->two_d ? 1 : 2;
	canvas cv = {malloc(3 * (size_t)size * (size_t)size * (size_t)panels), (long)size * panels, size};
	if (!cv.rgb)
		return r5_set_error(R5_ENOMEM, "seq-report PNG %s: %d x %d pixels", path, size * panels, size);
	memset(cv.rgb, 255, 3 * (size_t)size * (size_t)size * (size_t)panels);
	static const int pairs[2][2] = {{0, 1}, {1, 2}}; /* kx-ky, then ky-kz */
	for (int q = 0; q < panels; q++) {
		panel p = {(long)q * size, size, pairs[q][0], pairs[q][1], 1.0};
		/* one scale for both axes: the larger of the sampled extent and the grid's half-width fills
		 * the panel less a margin */
		double reach = 0.5;
		for (int a = 0; a < 2; a++) {
			int d = pairs[q][a];
			reach = fmax(reach, fmax(fmax(fabs(grid->kmin[d]), fabs(grid->kmax[d])), 0.5 * grid->matrix[d]));
		}
		p.scale = (0.5 * size - 0.04 * size) / reach;
		draw_frame(&cv, &p, grid);
		draw_samples(&cv, &p, ks);
		if (q == 1) /* a separating rule between the panels */
			line(&cv, (double)p.x0, 0, (double)p.x0, size - 1, (const unsigned char[3]){0, 0, 0});
	}
	r5_status s = r5_png_write_rgb(path, cv.width, cv.height, cv.rgb);
	free(cv.rgb);
	return s;
}
