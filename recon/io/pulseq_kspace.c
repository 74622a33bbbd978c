/* The k-space trajectory of a Pulseq sequence at every ADC sample (pulseq_kspace.h): block by
 * block, each axis's gradient as a list of piecewise-linear corners, integrated in closed form
 * at the RF centre and at the ADC samples. */
#include "pulseq_kspace.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"

#define PI 3.14159265358979323846

/* A piecewise-linear waveform: n corners (t ascending, s in block time; g Hz/m), zero outside. */
typedef struct wave {
	double *t, *g;
	double *area; /* area[j] = integral from t[0] to t[j] */
	long n, cap;
} wave;

static r5_status wave_push(wave *w, double t, double g)
{
	if (w->n == w->cap) {
		long cap = w->cap ? 2 * w->cap : 64;
		double *nt = realloc(w->t, sizeof *nt * (size_t)cap);
		if (nt)
			w->t = nt;
		double *ng = nt ? realloc(w->g, sizeof *ng * (size_t)cap) : NULL;
		if (ng)
			w->g = ng;
		double *na = ng ? realloc(w->area, sizeof *na * (size_t)cap) : NULL;
		if (!na)
			return r5_set_error(R5_ENOMEM, "pulseq k-space: gradient waveform of %ld points", cap);
		w->area = na;
		w->cap = cap;
	}
	w->t[w->n] = t, w->g[w->n] = g;
	w->n++;
	return R5_OK;
}

static void wave_integrate(wave *w)
{
	for (long j = 0; j < w->n; j++)
		w->area[j] = j ? w->area[j - 1] + 0.5 * (w->g[j] + w->g[j - 1]) * (w->t[j] - w->t[j - 1]) : 0.0;
}

/* Integral of the waveform from block start to t (zero before its first corner, constant area
 * after its last). */
static double wave_area(const wave *w, double t)
{
	if (w->n < 2 || t <= w->t[0])
		return 0.0;
	if (t >= w->t[w->n - 1])
		return w->area[w->n - 1];
	long lo = 0, hi = w->n - 1; /* t[lo] <= t < t[hi] */
	while (hi - lo > 1) {
		long mid = (lo + hi) / 2;
		if (w->t[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	double dt = w->t[hi] - w->t[lo], u = t - w->t[lo];
	double slope = dt > 0 ? (w->g[hi] - w->g[lo]) / dt : 0.0;
	return w->area[lo] + w->g[lo] * u + 0.5 * slope * u * u;
}

/* The corners of one gradient event; *last (in/out) is the axis's last value, the first corner
 * of a raster-shaped gradient. */
static r5_status grad_wave(const r5_seq *seq, const r5_seq_block *b, const r5_seq_grad *g, double *last, wave *w)
{
	w->n = 0;
	if (g->kind == R5_SEQ_GRAD_TRAP) {
		double t0 = g->delay_s, a = g->amplitude_hz_m;
		R5_TRY(wave_push(w, t0, 0.0));
		R5_TRY(wave_push(w, t0 + g->rise_s, a));
		if (g->flat_s > 0)
			R5_TRY(wave_push(w, t0 + g->rise_s + g->flat_s, a));
		R5_TRY(wave_push(w, t0 + g->rise_s + g->flat_s + g->fall_s, 0.0));
		*last = 0.0;
		return R5_OK;
	}
	const r5_seq_shape *amp = r5_seq_find_shape(seq, g->amp_shape);
	const r5_seq_shape *times = g->time_shape ? r5_seq_find_shape(seq, g->time_shape) : NULL;
	if (!amp || (g->time_shape && !times) || (times && times->n != amp->n))
		return r5_set_error(R5_EINVAL, "pulseq k-space: block %ld: gradient %ld's shapes are missing or disagree in "
				    "length", b->id, g->id);
	double r = seq->grad_raster_s, a = g->amplitude_hz_m;
	if (times) {
		for (long i = 0; i < amp->n; i++) {
			double t = g->delay_s + times->values[i] * r;
			if (i && t < w->t[w->n - 1])
				return r5_set_error(R5_EINVAL, "pulseq k-space: block %ld: gradient %ld's time shape %ld "
						    "decreases at sample %ld", b->id, g->id, times->id, i);
			R5_TRY(wave_push(w, t, a * amp->values[i]));
		}
		*last = a * amp->values[amp->n - 1];
		return R5_OK;
	}
	double corner = *last;
	R5_TRY(wave_push(w, g->delay_s, corner));
	for (long i = 0; i < amp->n; i++) {
		double v = a * amp->values[i];
		R5_TRY(wave_push(w, g->delay_s + (i + 0.5) * r, v));
		corner = 2.0 * v - corner; /* each raster value the mean of its corners */
	}
	/* an extrapolation that runs away (a waveform not continuous at its end) ends at its last value */
	double vlast = a * amp->values[amp->n - 1];
	if (fabs(corner - vlast) > 0.5 * fabs(a) + 1e-9)
		corner = vlast;
	R5_TRY(wave_push(w, g->delay_s + (double)amp->n * r, corner));
	*last = corner;
	return R5_OK;
}

/* The RF's centre (s from block start) and whether it excites (flip < 90.01 degrees). */
static r5_status rf_centre(const r5_seq *seq, const r5_seq_block *b, const r5_seq_rf *rf, double *centre, int *excite,
			   double *flip_deg)
{
	const r5_seq_shape *mag = r5_seq_find_shape(seq, rf->mag_shape);
	const r5_seq_shape *phase = rf->phase_shape ? r5_seq_find_shape(seq, rf->phase_shape) : NULL;
	const r5_seq_shape *times = rf->time_shape ? r5_seq_find_shape(seq, rf->time_shape) : NULL;
	if (!mag || mag->n < 1 || (phase && phase->n != mag->n) || (times && times->n != mag->n))
		return r5_set_error(R5_EINVAL, "pulseq k-space: block %ld: RF %ld has no magnitude shape or its shapes "
				    "disagree in length", b->id, rf->id);
	double r = seq->rf_raster_s, peak = 0.0;
	double complex sum = 0.0;
	for (long i = 0; i < mag->n; i++) {
		double m = fabs(mag->values[i]);
		if (m > peak)
			peak = m;
		double dt = times ? (i + 1 < mag->n ? times->values[i + 1] - times->values[i] : 1.0) * r : r;
		sum += mag->values[i] * cexp(I * 2.0 * PI * (phase ? phase->values[i] : 0.0)) * dt;
	}
	long first = -1, last = -1;
	for (long i = 0; i < mag->n; i++)
		if (fabs(mag->values[i]) >= peak * (1.0 - 1e-5)) {
			if (first < 0)
				first = i;
			last = i;
		}
	double tf = times ? times->values[first] * r : (first + 0.5) * r;
	double tl = times ? times->values[last] * r : (last + 0.5) * r;
	*centre = rf->delay_s + 0.5 * (tf + tl);
	*flip_deg = 360.0 * rf->amplitude_hz * cabs(sum);
	*excite = *flip_deg < 90.01;
	return R5_OK;
}

static r5_status grow_samples(r5_seq_kspace *ks, long need, long *cap)
{
	if (need <= *cap)
		return R5_OK;
	long next = *cap ? *cap : 1024;
	while (next < need)
		next *= 2;
	double *k = realloc(ks->k, sizeof *k * 3 * (size_t)next);
	if (k)
		ks->k = k;
	double *t = k ? realloc(ks->t, sizeof *t * (size_t)next) : NULL;
	if (!t)
		return r5_set_error(R5_ENOMEM, "pulseq k-space: %ld samples", next);
	ks->t = t;
	*cap = next;
	return R5_OK;
}

typedef struct state {
	double k[3];       /* k at the start of the block, 1/m */
	double last[3];    /* each axis's last gradient value */
	double slice_freq; /* of the latest excitation */
	long cap_samples, cap_readouts;
} state;

/* k(t) in the block: k_start + area(t), with the RF's reset or negation at t_rf. */
static void k_at(const wave w[3], const double k0[3], int has_rf, double t_rf, int excite, double t, double out[3])
{
	for (int d = 0; d < 3; d++) {
		double a = wave_area(&w[d], t);
		if (!has_rf || t < t_rf)
			out[d] = k0[d] + a;
		else {
			double a_rf = wave_area(&w[d], t_rf);
			out[d] = (excite ? 0.0 : -(k0[d] + a_rf)) + (a - a_rf);
		}
	}
}

static r5_status add_readout(r5_seq_kspace *ks, state *st, long bi, const r5_seq_adc *adc, const wave w[3],
			     int has_rf, double t_rf, int excite, double t_block)
{
	if (ks->n_readouts == st->cap_readouts) {
		long cap = st->cap_readouts ? 2 * st->cap_readouts : 256;
		r5_seq_readout *more = realloc(ks->readouts, sizeof *more * (size_t)cap);
		if (!more)
			return r5_set_error(R5_ENOMEM, "pulseq k-space: %ld readouts", cap);
		ks->readouts = more;
		st->cap_readouts = cap;
	}
	if (adc->n_samples > R5_SEQ_MAX_SAMPLES - ks->n_samples)
		return r5_set_error(R5_ERANGE, "pulseq k-space: readout %ld (block %ld in file order) takes the ADC samples "
					       "over %ld", ks->n_readouts + 1, bi + 1, R5_SEQ_MAX_SAMPLES);
	R5_TRY(grow_samples(ks, ks->n_samples + adc->n_samples, &st->cap_samples));
	r5_seq_readout *r = &ks->readouts[ks->n_readouts++];
	r->block = bi, r->first = ks->n_samples, r->n = adc->n_samples, r->dwell_s = adc->dwell_s;
	r->slice_freq_hz = st->slice_freq, r->slice = 0;
	for (long n = 0; n < adc->n_samples; n++) {
		double t = adc->delay_s + (n + 0.5) * adc->dwell_s;
		k_at(w, st->k, has_rf, t_rf, excite, t, ks->k + 3 * (ks->n_samples + n));
		ks->t[ks->n_samples + n] = t_block + t;
	}
	ks->n_samples += adc->n_samples;
	return R5_OK;
}

static r5_status one_block(const r5_seq *seq, long bi, r5_seq_kspace *ks, state *st, wave w[3], double t_block)
{
	const r5_seq_block *b = &seq->blocks[bi];
	long ids[3] = {b->gx, b->gy, b->gz};
	for (int d = 0; d < 3; d++) {
		w[d].n = 0;
		const r5_seq_grad *g = ids[d] ? r5_seq_find_grad(seq, ids[d]) : NULL;
		if (g)
			R5_TRY(grad_wave(seq, b, g, &st->last[d], &w[d]));
		else
			st->last[d] = 0.0;
		wave_integrate(&w[d]);
	}
	int has_rf = 0, excite = 0;
	double t_rf = 0.0, flip = 0.0;
	const r5_seq_rf *rf = b->rf ? r5_seq_find_rf(seq, b->rf) : NULL;
	if (rf) {
		R5_TRY(rf_centre(seq, b, rf, &t_rf, &excite, &flip));
		has_rf = 1;
		if (excite) {
			ks->n_excitations++;
			st->slice_freq = rf->freq_hz;
		} else {
			ks->n_refocusing++;
		}
	}
	const r5_seq_adc *adc = b->adc ? r5_seq_find_adc(seq, b->adc) : NULL;
	if (adc && adc->n_samples > 0)
		R5_TRY(add_readout(ks, st, bi, adc, w, has_rf, t_rf, excite, t_block));
	double end[3];
	k_at(w, st->k, has_rf, t_rf, excite, b->duration_s + 1.0, end);
	memcpy(st->k, end, sizeof end);
	return R5_OK;
}

/* Slice index per readout: distinct excitation frequencies (1 Hz apart), ascending. */
static r5_status number_slices(r5_seq_kspace *ks)
{
	double *freqs = malloc(sizeof *freqs * (size_t)(ks->n_readouts + 1));
	if (!freqs)
		return r5_set_error(R5_ENOMEM, "pulseq k-space: slices");
	long n = 0;
	for (long r = 0; r < ks->n_readouts; r++) {
		double f = ks->readouts[r].slice_freq_hz;
		long j = 0;
		while (j < n && fabs(freqs[j] - f) > 1.0)
			j++;
		if (j == n)
			freqs[n++] = f;
	}
	for (long r = 0; r < ks->n_readouts; r++) {
		long below = 0;
		for (long j = 0; j < n; j++)
			below += freqs[j] < ks->readouts[r].slice_freq_hz - 1.0;
		ks->readouts[r].slice = below;
	}
	ks->n_slices = n ? n : 1;
	free(freqs);
	return R5_OK;
}

r5_status r5_seq_kspace_compute(const r5_seq *seq, r5_seq_kspace *out)
{
	memset(out, 0, sizeof *out);
	if (!seq)
		return r5_set_error(R5_EINVAL, "pulseq k-space: no sequence");
	double fov[3] = {0, 0, 0};
	int n_fov = r5_seq_definition_numbers(seq, "FOV", fov, 3);
	for (int d = 0; d < 3; d++)
		out->fov_m[d] = d < n_fov && fov[d] > 0 ? fov[d] : 0.0;
	state st;
	memset(&st, 0, sizeof st);
	wave w[3];
	memset(w, 0, sizeof w);
	r5_status s = R5_OK;
	double t = 0.0;
	for (long bi = 0; bi < seq->n_blocks && s == R5_OK; bi++) {
		s = one_block(seq, bi, out, &st, w, t);
		t += seq->blocks[bi].duration_s;
	}
	for (int d = 0; d < 3; d++) {
		free(w[d].t);
		free(w[d].g);
		free(w[d].area);
	}
	out->duration_s = t;
	if (s == R5_OK)
		s = number_slices(out);
	if (s != R5_OK)
		r5_seq_kspace_free(out);
	return s;
}

void r5_seq_kspace_free(r5_seq_kspace *ks)
{
	if (!ks)
		return;
	free(ks->readouts);
	free(ks->k);
	free(ks->t);
	memset(ks, 0, sizeof *ks);
}

void r5_seq_kspace_cycles(const r5_seq_kspace *ks, long i, double cycles[3])
{
	for (int d = 0; d < 3; d++)
		cycles[d] = ks->k[3 * i + d] * (ks->fov_m[d] > 0 ? ks->fov_m[d] : 1.0);
}

const char *r5_seq_kind_name(r5_seq_kind kind)
{
	switch (kind) {
	case R5_SEQ_CARTESIAN: return "cartesian";
	case R5_SEQ_EPI: return "epi";
	case R5_SEQ_EPI_RAMP: return "epi-ramp-sampled";
	default: return "non-cartesian";
	}
}

/* Circular mean of the fractional parts (the offset from the integers), in (-1/2, 1/2]. */
static double grid_offset(const r5_seq_kspace *ks, int d)
{
	double complex sum = 0.0;
	for (long i = 0; i < ks->n_samples; i++) {
		double c[3];
		r5_seq_kspace_cycles(ks, i, c);
		sum += cexp(I * 2.0 * PI * c[d]);
	}
	double off = cabs(sum) > 0 ? carg(sum) / (2.0 * PI) : 0.0;
	return off <= -0.5 ? off + 1.0 : off;
}

void r5_seq_kspace_grid(const r5_seq_kspace *ks, r5_seq_grid *grid)
{
	memset(grid, 0, sizeof *grid);
	grid->kind = R5_SEQ_NONCARTESIAN;
	if (ks->n_samples == 0)
		return;
	for (int d = 0; d < 3; d++)
		grid->kmin[d] = INFINITY, grid->kmax[d] = -INFINITY;
	for (long i = 0; i < ks->n_samples; i++) {
		double c[3];
		r5_seq_kspace_cycles(ks, i, c);
		for (int d = 0; d < 3; d++) {
			grid->kmin[d] = fmin(grid->kmin[d], c[d]);
			grid->kmax[d] = fmax(grid->kmax[d], c[d]);
		}
	}
	grid->two_d = grid->kmin[2] > -0.5 && grid->kmax[2] < 0.5;
	int axes = grid->two_d ? 2 : 3;
	for (int d = 0; d < 3; d++) {
		double m = fmax(fabs(grid->kmin[d]), fabs(grid->kmax[d]));
		/* beyond 2^30 the double does not fit an int: the caller refuses such a matrix anyway */
		grid->matrix[d] = d < axes ? (int)fmin(fmax(1.0, 2.0 * round(m)), 1073741824.0) : 1;
		grid->offset[d] = d < axes ? grid_offset(ks, d) : 0.0;
	}
	double err = 0.0, line = 0.0, err1 = 0.0;
	for (long r = 0; r < ks->n_readouts; r++) {
		const r5_seq_readout *ro = &ks->readouts[r];
		double c0[3], c1[3], lo = INFINITY, hi = -INFINITY;
		r5_seq_kspace_cycles(ks, ro->first, c0);
		r5_seq_kspace_cycles(ks, ro->first + ro->n - 1, c1);
		grid->n_reversed += ro->n > 1 && c1[0] < c0[0];
		for (long i = ro->first; i < ro->first + ro->n; i++) {
			double c[3];
			r5_seq_kspace_cycles(ks, i, c);
			for (int d = 0; d < axes; d++) {
				double u = c[d] - grid->offset[d];
				err = fmax(err, fabs(u - round(u)));
				if (d == 1)
					err1 = fmax(err1, fabs(u - round(u)));
			}
			lo = fmin(lo, c[1]), hi = fmax(hi, c[1]);
		}
		line = fmax(line, hi - lo);
	}
	grid->max_grid_error = err;
	grid->line_error = line;
	if (err < 1e-3)
		grid->kind = grid->n_reversed > 0 && grid->n_reversed < ks->n_readouts ? R5_SEQ_EPI : R5_SEQ_CARTESIAN;
	else if (grid->two_d && line < 2e-3 && err1 < 1e-3)
		grid->kind = R5_SEQ_EPI_RAMP;
}
