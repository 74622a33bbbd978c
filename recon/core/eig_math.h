/* Eigen-decomposition of one small Hermitian matrix by cyclic complex Jacobi rotations,
 * shared by the CPU back end (one matrix per OpenMP iteration) and the CUDA back end (one
 * matrix per thread): ESPIRiT's per-pixel n_coils x n_coils problems.
 *
 * Contract used by recon/cpu/backend_cpu.c and gpu/: R5_EIG_MAX_N, R5_EIG_SCRATCH(n) (r5_cf
 * elements of scratch), and r5_eig_herm_jacobi(n, a, evals, scratch): `a` (n x n, column-major,
 * Hermitian; only its values are read) is replaced by the eigenvectors as columns, eigenvalues
 * go to evals[0..n-1] in descending order. No allocation inside.
 *
 * Each rotation first removes the phase of a_pq (W = diag(1, e^{-i phi}) on index q) and then
 * applies the real Jacobi rotation of Numerical Recipes (theta = (a_qq - a_pp) / 2|a_pq|),
 * so J = W G with G = [[c, s], [-s, c]]: A <- J^H A J, V <- V J. Sweeps stop when the
 * off-diagonal energy falls below 1e-14 of the total (off-diagonal norm < 1e-7 of the norm), or
 * after 40 sweeps.
 *
 * Unitarity of V rests on |e^{-i phi}| = 1, so the phase is normalised with hypotf on a copy
 * scaled to max |a_ij| = 1 (eigenvalues scaled back at the end), and an off-diagonal element too
 * small to change either diagonal entry in float (Numerical Recipes' test) is set to zero
 * instead of rotated: rotating ever tinier elements, whose squared magnitudes underflow, built
 * non-unitary rotations and wrecked the eigenvectors (|V^H V - I| up to 0.8 for n = 8 before the
 * fix; tests/gpu/gpu_suite.c checks it on both back ends). */
#ifndef R5_CORE_EIG_MATH_H
#define R5_CORE_EIG_MATH_H

#include "complex_math.h"

#define R5_EIG_MAX_N 64
#define R5_EIG_SCRATCH(n) ((long)(n) * (long)(n))

R5_HD void r5_eig_rotate(int n, r5_cf *w, r5_cf *v, int p, int q)
{
	r5_cf b = w[p + q * n];
	float bmag = hypotf(r5_cf_re(b), r5_cf_im(b));
	float app = r5_cf_re(w[p + p * n]), aqq = r5_cf_re(w[q + q * n]);
	/* negligible next to both diagonal entries (or below any meaning at unit scale): drop it */
	float g = 100.0f * bmag;
	if (bmag < 1e-30f || (fabsf(app) + g == fabsf(app) && fabsf(aqq) + g == fabsf(aqq))) {
		w[p + q * n] = r5_cf_make(0.0f, 0.0f);
		w[q + p * n] = r5_cf_make(0.0f, 0.0f);
		return;
	}
	r5_cf u_conj = r5_cf_make(r5_cf_re(b) / bmag, -r5_cf_im(b) / bmag); /* e^{-i phi} */
	float theta = (aqq - app) / (2.0f * bmag);
	float t = (theta >= 0.0f ? 1.0f : -1.0f) / (fabsf(theta) + R5_SQRTF(theta * theta + 1.0f));
	float c = 1.0f / R5_SQRTF(t * t + 1.0f), s = t * c;
	/* J = [[c, s], [-s u*, c u*]] in the (p, q) plane */
	r5_cf jpp = r5_cf_make(c, 0.0f), jpq = r5_cf_make(s, 0.0f);
	r5_cf jqp = r5_cf_scale(u_conj, -s), jqq = r5_cf_scale(u_conj, c);
	for (int i = 0; i < n; i++) { /* columns: A <- A J, V <- V J */
		r5_cf aip = w[i + p * n], aiq = w[i + q * n];
		w[i + p * n] = r5_cf_add(r5_cf_mul(aip, jpp), r5_cf_mul(aiq, jqp));
		w[i + q * n] = r5_cf_add(r5_cf_mul(aip, jpq), r5_cf_mul(aiq, jqq));
		r5_cf vip = v[i + p * n], viq = v[i + q * n];
		v[i + p * n] = r5_cf_add(r5_cf_mul(vip, jpp), r5_cf_mul(viq, jqp));
		v[i + q * n] = r5_cf_add(r5_cf_mul(vip, jpq), r5_cf_mul(viq, jqq));
	}
	for (int i = 0; i < n; i++) { /* rows: A <- J^H A */
		r5_cf api = w[p + i * n], aqi = w[q + i * n];
		w[p + i * n] = r5_cf_add(r5_cf_mul(r5_cf_conj(jpp), api), r5_cf_mul(r5_cf_conj(jqp), aqi));
		w[q + i * n] = r5_cf_add(r5_cf_mul(r5_cf_conj(jpq), api), r5_cf_mul(r5_cf_conj(jqq), aqi));
	}
	w[p + q * n] = r5_cf_make(0.0f, 0.0f);
	w[q + p * n] = r5_cf_make(0.0f, 0.0f);
	w[p + p * n] = r5_cf_make(r5_cf_re(w[p + p * n]), 0.0f);
	w[q + q * n] = r5_cf_make(r5_cf_re(w[q + q * n]), 0.0f);
}

R5_HD void r5_eig_herm_jacobi(int n, r5_cf *a, float *evals, r5_cf *scratch)
{
	r5_cf *w = scratch;
	float scale = 0.0f, total = 0.0f;
	for (int i = 0; i < n * n; i++) {
		float m = fmaxf(fabsf(r5_cf_re(a[i])), fabsf(r5_cf_im(a[i])));
		scale = m > scale ? m : scale;
	}
	float inv_scale = scale > 0.0f ? 1.0f / scale : 0.0f;
	for (int i = 0; i < n * n; i++) {
		w[i] = r5_cf_scale(a[i], inv_scale);
		total += r5_cf_abs2(w[i]);
		a[i] = r5_cf_make((i % (n + 1)) == 0 ? 1.0f : 0.0f, 0.0f); /* a becomes V = I */
	}
	for (int sweep = 0; sweep < 40; sweep++) {
		float off = 0.0f;
		for (int q = 1; q < n; q++)
			for (int p = 0; p < q; p++)
				off += 2.0f * r5_cf_abs2(w[p + q * n]);
		if (off <= 1e-14f * total || total == 0.0f)
			break;
		for (int q = 1; q < n; q++)
			for (int p = 0; p < q; p++)
				r5_eig_rotate(n, w, a, p, q);
	}
	for (int i = 0; i < n; i++)
		evals[i] = r5_cf_re(w[i + i * n]) * scale;
	for (int i = 0; i < n - 1; i++) { /* selection sort, descending, columns follow */
		int best = i;
		for (int j = i + 1; j < n; j++)
			if (evals[j] > evals[best])
				best = j;
		if (best == i)
			continue;
		float e = evals[i];
		evals[i] = evals[best];
		evals[best] = e;
		for (int k = 0; k < n; k++) {
			r5_cf tmp = a[k + i * n];
			a[k + i * n] = a[k + best * n];
			a[k + best * n] = tmp;
		}
	}
}

#endif
