/* How the CPU back end plans its FFTs (cpu_fft.c). FFTW's planner and its wisdom are
 * process-wide, so this setting is too; it sits behind the back end's one planner lock.
 *   no wisdom path (the default)  FFTW_ESTIMATE: planning is instant and touches no array.
 *   a wisdom path                 FFTW_MEASURE: a shape is timed once, on scratch arrays of the
 *                                 caller's size and alignment (measuring overwrites its arrays,
 *                                 so never on live data), and the result kept as FFTW wisdom in
 *                                 the file. A later plan of the same shape, in this process or
 *                                 another sharing the file, comes from the wisdom and measures
 *                                 nothing. The file is read at the first plan after
 *                                 configuration and rewritten after each newly measured plan:
 *                                 merged with what other processes wrote meanwhile, under a lock
 *                                 file (PATH.lock), written to a temporary file in the same
 *                                 folder and renamed over PATH, so a reader never sees half a
 *                                 file. An unreadable or corrupt file is logged and ignored
 *                                 (then replaced); a failed write is logged and planning goes on.
 * Measuring is bounded, because it runs under the planner lock (every other thread's planning,
 * even from wisdom, waits for it) and its scratch is counted in no memory budget:
 *   time   one MEASURE plans for at most R5_CPU_FFT_MEASURE_SECONDS (10 s) through
 *          fftwf_set_timelimit. FFTW plans FFTW_ESTIMATE first, then measures; out of time it
 *          returns the ESTIMATE plan and keeps the timeout as wisdom (written to the file too),
 *          so the shape is not measured again under the same or a shorter limit, in this
 *          process or another sharing the file (a longer limit tries again; so does removing
 *          the file, e.g. after timeouts on a loaded machine). FFTW checks the clock between
 *          trial transforms, so the limit can be overrun by about one trial's timing (a few
 *          transforms of the shape); the size cap keeps that short. A timeout found in the
 *          wisdom returns at once, touching none of its (calloc'ed) scratch.
 *   size   a transform of more than R5_CPU_FFT_MEASURE_CAP complex values (2^25 = 256 MiB per
 *          scratch array, 512 MiB out of place) is not measured: a plan in the wisdom is used
 *          (FFTW_WISDOM_ONLY, which measures nothing and allocates nothing), else FFTW_ESTIMATE,
 *          with one log line. Below the cap, scratch is the transform's size (twice out of
 *          place), held only while measuring.
 * The recon5t CLI sets it from --fft-wisdom PATH or R5_FFT_WISDOM, recon5td from fft_wisdom. */
#ifndef R5_CPU_CPU_FFT_H
#define R5_CPU_CPU_FFT_H

#include "../core/status.h"

/* wisdom_path NULL or "" = FFTW_ESTIMATE. R5_EINVAL when the path is too long, R5_EIO when its
 * folder does not exist or is not writable (the message names path and folder). Plans already
 * made keep the mode they were made with. */
r5_status r5_cpu_fft_configure(const char *wisdom_path);

#define R5_CPU_FFT_MEASURE_CAP (1L << 25) /* complex values; above it nothing is measured */
#define R5_CPU_FFT_MEASURE_SECONDS 10.0   /* planning time of one MEASURE (the 3D SENSE shapes
                                            * of 128^3 take 2.5-4 s on one core; 2 s lost them) */

/* The two bounds above, for tests and tuning (process-wide, like the rest). elements: the
 * largest transform measured, 0 = measure nothing (wisdom or ESTIMATE only); R5_EINVAL when
 * negative. seconds: the time limit of one MEASURE; R5_EINVAL unless positive and finite. */
r5_status r5_cpu_fft_set_measure_cap(long elements);
r5_status r5_cpu_fft_set_measure_seconds(double seconds);

/* Counts since the process started, for tests and logs. */
typedef struct r5_cpu_fft_stats {
	long plans_estimate;        /* FFTW_ESTIMATE plans: no wisdom path, no scratch memory, over
	                             * the cap, or the MEASURE timed out (the two below) */
	long plans_over_cap;        /* of which: above the measuring cap and not in the wisdom */
	long plans_timed_out;       /* of which: the MEASURE ran out of time (now or in the wisdom) */
	long plans_from_wisdom;     /* FFTW_MEASURE plans found in the wisdom: nothing measured */
	long plans_measured;        /* FFTW_MEASURE plans timed on scratch arrays */
	long long scratch_bytes;    /* scratch allocated for measuring, in all */
	long wisdom_reads_failed;   /* wisdom files present but unreadable or corrupt */
	long wisdom_writes;         /* wisdom files written */
	long wisdom_writes_failed;  /* writes that failed (logged) */
} r5_cpu_fft_stats;

void r5_cpu_fft_get_stats(r5_cpu_fft_stats *stats);

#endif
