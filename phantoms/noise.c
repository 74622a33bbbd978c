/* Random streams, coil covariance model and Cholesky factorisation (see noise.h).
 * xoshiro256** and splitmix64: Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators", ACM TOMS 47(4), 2021. */
#include "noise.h"

#include <math.h>
#include <stdlib.h>

#define PI 3.14159265358979323846

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void r5_rng_seed(r5_rng *rng, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed * 0x2545f4914f6cdd1dULL + splitmix64(&stream);
	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t r5_rng_next(r5_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double r5_rng_uniform(r5_rng *rng)
{
	return (double)(r5_rng_next(rng) >> 11) * 0x1.0p-53;
}

double complex r5_rng_cgauss(r5_rng *rng)
{
	/* Box-Muller: radius sqrt(-log u) gives E|z|² = 1 */
	double u = 1.0 - r5_rng_uniform(rng), v = r5_rng_uniform(rng);
	double radius = sqrt(-log(u));
	return radius * cos(2 * PI * v) + I * radius * sin(2 * PI * v);
}

r5_status r5_noise_covariance(int n_coils, double sigma, double correlation, double complex *psi)
{
	if (n_coils < 1 || !psi)
		return r5_set_error(R5_EINVAL, "noise covariance: %d coils", n_coils);
	if (!(sigma >= 0) || !(correlation >= 0 && correlation < 0.9))
		return r5_set_error(R5_EINVAL, "noise covariance: sigma %g must be >= 0 and correlation %g in [0, 0.9)",
				    sigma, correlation);
	double *sd = malloc(sizeof *sd * (size_t)n_coils);
	if (!sd)
		return r5_set_error(R5_ENOMEM, "noise covariance: %d coils", n_coils);
	for (int c = 0; c < n_coils; c++)
		sd[c] = sigma * (1.0 + 0.2 * sin(2 * PI * (c + 0.5) / n_coils + 0.3 * c));
	/* AR(1) (Kac-Murdock-Szegő) correlation with a complex ratio: positive definite for
	 * |ratio| < 1, neighbours correlated by `correlation`, decaying with distance. */
	double complex ratio = correlation * cexp(I * 0.3);
	for (int a = 0; a < n_coils; a++)
		for (int b = 0; b < n_coils; b++) {
			double complex rho = a <= b ? cpow(ratio, b - a) : conj(cpow(ratio, a - b));
			if (a == b)
				rho = 1;
			psi[a * n_coils + b] = sd[a] * sd[b] * rho;
		}
	free(sd);
	return R5_OK;
}

r5_status r5_cholesky(int n, const double complex *psi, double complex *lower)
{
	for (int i = 0; i < n * n; i++)
		lower[i] = 0;
	for (int j = 0; j < n; j++) {
		double d = creal(psi[j * n + j]);
		for (int k = 0; k < j; k++)
			d -= creal(lower[j * n + k] * conj(lower[j * n + k]));
		if (!(d > 0))
			return r5_set_error(R5_EINVAL, "cholesky: matrix is not positive definite (pivot %d is %g)", j, d);
		double ljj = sqrt(d);
		lower[j * n + j] = ljj;
		for (int i = j + 1; i < n; i++) {
			double complex s = psi[i * n + j];
			for (int k = 0; k < j; k++)
				s -= lower[i * n + k] * conj(lower[j * n + k]);
			lower[i * n + j] = s / ljj;
		}
	}
	return R5_OK;
}

void r5_cholesky_solve(int n, const double complex *lower, int m, double complex *b)
{
	for (int col = 0; col < m; col++) {
		for (int i = 0; i < n; i++) { /* L y = b */
			double complex s = b[i * m + col];
			for (int k = 0; k < i; k++)
				s -= lower[i * n + k] * b[k * m + col];
			b[i * m + col] = s / lower[i * n + i];
		}
		for (int i = n - 1; i >= 0; i--) { /* Lᴴ x = y */
			double complex s = b[i * m + col];
			for (int k = i + 1; k < n; k++)
				s -= conj(lower[k * n + i]) * b[k * m + col];
			b[i * m + col] = s / lower[i * n + i];
		}
	}
}

void r5_noise_add(int n_coils, const double complex *lower, r5_rng *rng, float complex *out, long stride)
{
	double complex z[1024];
	int n = n_coils < 1024 ? n_coils : 1024;
	for (int j = 0; j < n; j++)
		z[j] = r5_rng_cgauss(rng);
	for (int c = 0; c < n; c++) {
		double complex s = 0;
		for (int j = 0; j <= c; j++)
			s += lower[c * n_coils + j] * z[j];
		out[c * stride] += (float complex)s;
	}
}

r5_status r5_noise_factor(int n_coils, double sigma, double correlation, double complex **lower)
{
	*lower = NULL;
	if (!(sigma > 0))
		return R5_OK;
	double complex *psi = malloc(sizeof *psi * (size_t)n_coils * n_coils);
	*lower = malloc(sizeof **lower * (size_t)n_coils * n_coils);
	r5_status s = !psi || !*lower ? r5_set_error(R5_ENOMEM, "phantom: noise covariance of %d coils", n_coils)
				      : r5_noise_covariance(n_coils, sigma, correlation, psi);
	if (s == R5_OK)
		s = r5_cholesky(n_coils, psi, *lower);
	free(psi);
	if (s != R5_OK) {
		free(*lower);
		*lower = NULL;
	}
	return s;
}
