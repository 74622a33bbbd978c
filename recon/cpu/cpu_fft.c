/* CPU back end: FFTs with FFTW3 single precision, multithreaded. FFTW's planner is
 * process-wide and not thread-safe: every planner call (plan creation, fftwf_plan_with_nthreads,
 * plan destruction, wisdom import and export) goes through planner_lock, in this file only (see
 * backend_cpu.c's header for why fftwf_make_planner_thread_safe() is not relied on).
 *
 * Planning mode (cpu_fft.h): FFTW_ESTIMATE by default; with a wisdom path, FFTW_MEASURE. A
 * measured plan is first asked of the wisdom alone (FFTW_WISDOM_ONLY, which measures nothing
 * and so may plan on the caller's arrays); failing that it is measured on scratch arrays with
 * the caller's size and address alignment (FFTW keys wisdom on the alignment, and new-array
 * execution needs the planned one), and the wisdom file is rewritten. Measuring is bounded in
 * time (fftwf_set_timelimit, set and reset around the one MEASURE call: the limit is planner
 * state) and in size (above the cap only the wisdom or FFTW_ESTIMATE, no scratch). */
#include <complex.h>
#include <errno.h>
#include <fcntl.h>
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/dims.h"
#include "../core/log.h"
#include "cpu_backend.h"
#include "cpu_fft.h"

static pthread_once_t fftw_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

/* Planner state beside FFTW's own, under planner_lock. */
static struct {
	char path[4096];     /* wisdom file, "" = FFTW_ESTIMATE */
	int loaded;          /* the file has been merged into FFTW's wisdom since configuration */
	int write_warned;    /* one warning per configuration for failed writes */
	long measure_cap;    /* complex values; larger transforms are not measured */
	double measure_seconds;
	r5_cpu_fft_stats stats;
} planning = {.measure_cap = R5_CPU_FFT_MEASURE_CAP, .measure_seconds = R5_CPU_FFT_MEASURE_SECONDS};

static void fftw_setup(void)
{
	pthread_mutex_lock(&planner_lock);
	fftwf_init_threads();
	pthread_mutex_unlock(&planner_lock);
}

void r5_cpu_fft_init(void)
{
	pthread_once(&fftw_once, fftw_setup);
}

r5_status r5_cpu_fft_configure(const char *wisdom_path)
{
	const char *path = wisdom_path ? wisdom_path : "";
	if (strlen(path) >= sizeof planning.path)
		return r5_set_error(R5_EINVAL, "fft wisdom: path of %zu characters is too long", strlen(path));
	if (*path) {
		char folder[sizeof planning.path];
		const char *slash = strrchr(path, '/');
		if (!slash)
			snprintf(folder, sizeof folder, ".");
		else
			snprintf(folder, sizeof folder, "%.*s", slash == path ? 1 : (int)(slash - path), path);
		if (slash && !slash[1])
			return r5_set_error(R5_EINVAL, "fft wisdom %s: names a folder, not a file", path);
		if (access(folder, W_OK | X_OK) != 0)
			return r5_set_error(R5_EIO, "fft wisdom %s: folder %s is not writable (%s)", path, folder,
					    strerror(errno));
	}
	r5_cpu_fft_init();
	pthread_mutex_lock(&planner_lock);
	snprintf(planning.path, sizeof planning.path, "%s", path);
	planning.loaded = 0;
	planning.write_warned = 0;
	pthread_mutex_unlock(&planner_lock);
	return R5_OK;
}

r5_status r5_cpu_fft_set_measure_cap(long elements)
{
	if (elements < 0)
		return r5_set_error(R5_EINVAL, "fft measuring cap: %ld elements", elements);
	pthread_mutex_lock(&planner_lock);
	planning.measure_cap = elements;
	pthread_mutex_unlock(&planner_lock);
	return R5_OK;
}

r5_status r5_cpu_fft_set_measure_seconds(double seconds)
{
	if (!(seconds > 0) || !isfinite(seconds))
		return r5_set_error(R5_EINVAL, "fft measuring time limit: %g s is not a positive time", seconds);
	pthread_mutex_lock(&planner_lock);
	planning.measure_seconds = seconds;
	pthread_mutex_unlock(&planner_lock);
	return R5_OK;
}

void r5_cpu_fft_get_stats(r5_cpu_fft_stats *stats)
{
	pthread_mutex_lock(&planner_lock);
	*stats = planning.stats;
	pthread_mutex_unlock(&planner_lock);
}

/* --- the wisdom file (planner lock held) --- */

/* Merges the file into FFTW's wisdom; 0 when it is absent, 1 when read, -1 when unreadable. */
static int wisdom_merge(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	int ok = fftwf_import_wisdom_from_file(f);
	fclose(f);
	return ok ? 1 : -1;
}

static void wisdom_load_once(void)
{
	if (planning.loaded)
		return;
	planning.loaded = 1;
	int got = wisdom_merge(planning.path);
	if (got < 0) {
		planning.stats.wisdom_reads_failed++;
		r5_warn("fft wisdom %s: unreadable or not FFTW %s wisdom, ignored (it is rewritten after the next "
			"measured plan)", planning.path, fftwf_version);
	} else if (got > 0)
		r5_debug("fft wisdom %s: read", planning.path);
}

/* The exported wisdom into a temporary file beside the target, synced, then renamed over it. */
static int wisdom_write_renamed(const char *path)
{
	char temp[sizeof planning.path + 16];
	snprintf(temp, sizeof temp, "%s.XXXXXX", path);
	int fd = mkstemp(temp);
	if (fd < 0)
		return -1;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(temp);
		return -1;
	}
	fchmod(fd, 0644); /* wisdom holds no patient data; other users' recon5t may share it */
	fftwf_export_wisdom_to_file(f);
	int bad = fflush(f) != 0 || ferror(f) || fsync(fd) != 0;
	bad |= fclose(f) != 0;
	if (bad || rename(temp, path) != 0) {
		int saved = errno;
		unlink(temp);
		errno = saved;
		return -1;
	}
	return 0;
}

/* After a new measured plan: under PATH.lock (other processes may write too), merge what they
 * wrote since (a file that cannot be read is replaced), then write the union. */
static void wisdom_save(void)
{
	char lock_path[sizeof planning.path + 8];
	snprintf(lock_path, sizeof lock_path, "%s.lock", planning.path);
	int lock_fd = open(lock_path, O_RDWR | O_CREAT, 0644);
	struct flock whole = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int bad = lock_fd < 0;
	while (!bad && fcntl(lock_fd, F_SETLKW, &whole) != 0)
		bad = errno != EINTR;
	if (!bad) {
		wisdom_merge(planning.path);
		bad = wisdom_write_renamed(planning.path) != 0;
	}
	int saved = errno;
	if (lock_fd >= 0)
		close(lock_fd); /* releases the lock */
	if (!bad) {
		planning.stats.wisdom_writes++;
		return;
	}
	planning.stats.wisdom_writes_failed++;
	if (!planning.write_warned)
		r5_warn("fft wisdom %s: cannot be written (%s); plans stay measured in this process only",
			planning.path, strerror(saved));
	planning.write_warned = 1;
}

/* --- plans --- */

/* A plan object holds up to eight FFTW plans made lazily: forward/inverse x in/out of place x
 * SIMD-aligned or not, because FFTW's new-array execute requires the planned alignment and
 * placement. */

struct cpu_fft_plan {
	long dims[R5_DIMS];
	unsigned long flags;
	fftwf_plan plans[8]; /* index: inverse | in_place << 1 | unaligned << 2 */
	pthread_mutex_t lock;
};

r5_status r5_cpu_fft_plan_make(void *state, void **plan, const long dims[R5_DIMS], unsigned long flags)
{
	struct cpu_fft_plan *p = calloc(1, sizeof *p);
	if (!p)
		return r5_set_error(R5_ENOMEM, "FFT plan");
	r5_dims_copy(p->dims, dims);
	p->flags = flags;
	pthread_mutex_init(&p->lock, NULL);
	*plan = p;
	return R5_OK;
}

/* The transform as FFTW's guru interface wants it, slowest dimension first. */
struct fft_problem {
	fftw_iodim64 fdims[R5_DIMS], bdims[R5_DIMS];
	int nf, nb, sign;
	unsigned flags; /* FFTW_UNALIGNED or 0 */
	long n;         /* complex values of one array */
};

static void fft_problem_make(const struct cpu_fft_plan *p, int inverse, int unaligned, struct fft_problem *pb)
{
	long str[R5_DIMS];
	r5_dims_strides(str, p->dims);
	pb->nf = pb->nb = 0;
	for (int d = R5_DIMS - 1; d >= 0; d--) {
		if (p->dims[d] == 1)
			continue;
		fftw_iodim64 io = {.n = p->dims[d], .is = str[d], .os = str[d]};
		if (p->flags & (1UL << d))
			pb->fdims[pb->nf++] = io;
		else
			pb->bdims[pb->nb++] = io;
	}
	pb->sign = inverse ? FFTW_BACKWARD : FFTW_FORWARD;
	pb->flags = unaligned ? FFTW_UNALIGNED : 0;
	pb->n = r5_dims_size(p->dims);
}

static fftwf_plan guru(const struct fft_problem *pb, const float complex *in, float complex *out, unsigned mode)
{
	return fftwf_plan_guru64_dft(pb->nf, pb->fdims, pb->nb, pb->bdims, (fftwf_complex *)in, (fftwf_complex *)out,
				     pb->sign, mode | pb->flags);
}

/* n zeroed complex values starting at the same address modulo 64 bytes as `like`; *block to
 * free. calloc, not memset: a large block is fresh pages, touched only by FFTW's trial
 * transforms, so a MEASURE that stops at once (a timeout in the wisdom) costs no memory. */
static float complex *scratch_like(const float complex *like, long n, void **block)
{
	*block = calloc((size_t)n * sizeof(float complex) + 128, 1);
	if (!*block)
		return NULL;
	char *base = *block;
	base += (64 - (uintptr_t)base % 64) % 64;
	return (float complex *)(void *)(base + (uintptr_t)like % 64);
}

static double seconds_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* FFTW_MEASURE: from the wisdom; else, up to the size cap, timed on scratch within the time
 * limit; else FFTW_ESTIMATE (planner lock held). */
static fftwf_plan plan_measured(const struct cpu_fft_plan *p, const struct fft_problem *pb, float complex *out,
				const float complex *in)
{
	wisdom_load_once();
	fftwf_plan plan = guru(pb, in, out, FFTW_MEASURE | FFTW_WISDOM_ONLY);
	if (plan) {
		planning.stats.plans_from_wisdom++;
		return plan;
	}
	char text[160];
	r5_dims_format(text, sizeof text, p->dims);
	const char *direction = pb->sign == FFTW_FORWARD ? "forward" : "inverse";
	const char *placement = out == in ? "in place" : "out of place";
	if (pb->n > planning.measure_cap) {
		r5_info("fft %s (flags 0x%lx, %s, %s): %ld values, above the measuring cap of %ld and not in the "
			"wisdom; planned FFTW_ESTIMATE", text, p->flags, direction, placement, pb->n,
			planning.measure_cap);
		planning.stats.plans_estimate++;
		planning.stats.plans_over_cap++;
		return guru(pb, in, out, FFTW_ESTIMATE);
	}
	void *in_block = NULL, *out_block = NULL;
	float complex *s_in = scratch_like(in, pb->n, &in_block), *s_out = s_in;
	if (s_in && out != in)
		s_out = scratch_like(out, pb->n, &out_block);
	double scratch = (double)pb->n * sizeof(float complex) * (out == in ? 1 : 2);
	if (!s_in || !s_out) {
		free(in_block);
		r5_warn("fft %s: no memory for %.1f MiB of planning scratch; this plan is FFTW_ESTIMATE", text,
			scratch / 1048576.0);
		planning.stats.plans_estimate++;
		return guru(pb, in, out, FFTW_ESTIMATE);
	}
	planning.stats.scratch_bytes += (long long)scratch;
	double start = seconds_now();
	fftwf_set_timelimit(planning.measure_seconds);
	plan = guru(pb, s_in, s_out, FFTW_MEASURE);
	fftwf_set_timelimit(FFTW_NO_TIMELIMIT);
	double took = seconds_now() - start;
	free(in_block);
	free(out_block);
	if (!plan)
		return NULL;
	/* Out of time, FFTW returns its FFTW_ESTIMATE plan and records a timeout, not a measured
	 * plan: the wisdom alone (measuring nothing, so on the caller's arrays) tells which. */
	fftwf_plan probe = guru(pb, in, out, FFTW_MEASURE | FFTW_WISDOM_ONLY);
	if (probe) {
		fftwf_destroy_plan(probe);
		planning.stats.plans_measured++;
		r5_info("fft %s (flags 0x%lx, %s, %s): measured in %.2f s, wisdom to %s", text, p->flags, direction,
			placement, took, planning.path);
		wisdom_save();
		return plan;
	}
	planning.stats.plans_estimate++;
	planning.stats.plans_timed_out++;
	if (took < planning.measure_seconds) { /* the timeout came from the wisdom: nothing new */
		r5_debug("fft %s (flags 0x%lx, %s, %s): timed out before under this limit; FFTW_ESTIMATE", text,
			 p->flags, direction, placement);
		return plan;
	}
	r5_info("fft %s (flags 0x%lx, %s, %s): measuring stopped at the %.2f s limit (%.2f s); the plan is "
		"FFTW_ESTIMATE's, the timeout kept as wisdom in %s", text, p->flags, direction, placement,
		planning.measure_seconds, took, planning.path);
	wisdom_save();
	return plan;
}

static fftwf_plan cpu_fft_plan_variant(struct cpu_state *s, struct cpu_fft_plan *p, float complex *out,
				       const float complex *in, int inverse)
{
	int in_place = out == in;
	int unaligned = fftwf_alignment_of((float *)out) != 0 || fftwf_alignment_of((float *)in) != 0;
	int v = inverse | in_place << 1 | unaligned << 2;
	pthread_mutex_lock(&p->lock);
	if (!p->plans[v]) {
		struct fft_problem pb;
		fft_problem_make(p, inverse, unaligned, &pb);
		pthread_mutex_lock(&planner_lock);
		fftwf_plan_with_nthreads(pb.n > 16384 ? s->threads : 1);
		if (planning.path[0]) {
			p->plans[v] = plan_measured(p, &pb, out, in);
		} else {
			/* FFTW_ESTIMATE does not touch the arrays, so planning on the caller's is safe */
			p->plans[v] = guru(&pb, in, out, FFTW_ESTIMATE);
			planning.stats.plans_estimate++;
		}
		pthread_mutex_unlock(&planner_lock);
	}
	fftwf_plan plan = p->plans[v];
	pthread_mutex_unlock(&p->lock);
	return plan;
}

r5_status r5_cpu_fft_exec(void *state, void *plan, float complex *out, const float complex *in, int inverse)
{
	struct cpu_fft_plan *p = plan;
	int any = 0;
	for (int d = 0; d < R5_DIMS; d++)
		if ((p->flags & (1UL << d)) && p->dims[d] > 1)
			any = 1;
	if (!any)
		return r5_cpu_copy(state, out, in, (size_t)r5_dims_size(p->dims) * sizeof *out);
	fftwf_plan fp = cpu_fft_plan_variant(state, p, out, in, !!inverse);
	if (!fp)
		return r5_set_error(R5_EINTERNAL, "FFTW could not plan the transform");
	fftwf_execute_dft(fp, (fftwf_complex *)in, (fftwf_complex *)out);
	return R5_OK;
}

void r5_cpu_fft_plan_destroy(void *state, void *plan)
{
	struct cpu_fft_plan *p = plan;
	if (!p)
		return;
	pthread_mutex_lock(&planner_lock);
	for (int v = 0; v < 8; v++)
		if (p->plans[v])
			fftwf_destroy_plan(p->plans[v]);
	pthread_mutex_unlock(&planner_lock);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
