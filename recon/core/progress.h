/* The stop hook: progress reports and cancellation for long work, called from the thread that
 * called the library (never from inside an OpenMP region).
 *
 * A long stage takes a `const r5_progress *` (NULL: never stop, no reports) and calls
 * r5_progress_check between chunks of its work; when the hook says stop, the stage frees what it
 * allocated and returns the hook's status (R5_ECANCELLED, R5_ETIMEDOUT) with a message naming
 * the stage. The rule for every stage: a check at least every ~0.5 s of work on a 2-core
 * machine at 3D sizes (128^3 x 32 coils), i.e. chunks of about R5_PROGRESS_CHUNK_VALUES values
 * touched or R5_PROGRESS_CHUNK_MACS multiply-adds between checks — well below that budget, so
 * that loaded machines stay inside it (tests/unit/test_stop_latency.c measures every stage).
 *
 * r5_progress_part maps a stage's own fractions 0..1 onto a range of its caller's, so that
 * nested stages report one increasing fraction. */
#ifndef R5_CORE_PROGRESS_H
#define R5_CORE_PROGRESS_H

#include <stddef.h>

#include "status.h"

/* Progress and cancellation hook: return non-zero to stop (the run returns R5_ECANCELLED, or
 * whatever status *stop_status was set to, e.g. R5_ETIMEDOUT). fraction in [0, 1]. */
typedef struct r5_progress {
	int (*report)(void *user, const char *stage, double fraction, r5_status *stop_status);
	void *user;
} r5_progress;

/* Work between two checks, sized from measurements on 2 cores: complex values an FFT, transpose
 * or element-wise pass streams through (4 Mi: 30-150 ms depending on the pass), or complex
 * multiply-adds of a matrix product (32 Mi: ~80 ms with the CPU back end's zgemm, ~0.15 s
 * single-threaded). */
#define R5_PROGRESS_CHUNK_VALUES (4L << 20)
#define R5_PROGRESS_CHUNK_MACS (1L << 25)

/* Calls the hook (if any); returns R5_OK or the stop status with the message
 * "stage <stage>: cancelled by the caller" / "stage <stage>: deadline exceeded". */
static inline r5_status r5_progress_check(const r5_progress *progress, const char *stage, double fraction)
{
	if (!progress || !progress->report)
		return R5_OK;
	r5_status stop = R5_ECANCELLED;
	if (!progress->report(progress->user, stage, fraction, &stop))
		return R5_OK;
	if (stop == R5_OK)
		stop = R5_ECANCELLED;
	return r5_set_error(stop, "stage %s: %s", stage,
			    stop == R5_ETIMEDOUT ? "deadline exceeded" : "cancelled by the caller");
}

/* A part of a parent hook: fraction f of the part is lo + (hi - lo) f of the parent; with
 * `stage` set the parent sees that stage name instead of the inner ones (a per-frame loop keeps
 * one name for progress events; stop messages still name the inner step). */
typedef struct r5_progress_part {
	r5_progress hook;
	const r5_progress *parent;
	double lo, hi;
	const char *stage;
} r5_progress_part;

static inline int r5_progress_part_report(void *user, const char *stage, double fraction, r5_status *stop_status)
{
	const r5_progress_part *part = user;
	double f = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
	return part->parent->report(part->parent->user, part->stage ? part->stage : stage,
				    part->lo + (part->hi - part->lo) * f, stop_status);
}

/* Fills `part` and returns the hook to hand down: NULL when the parent is NULL (nothing to
 * check), else &part->hook. `part` must outlive the calls. */
static inline const r5_progress *r5_progress_part_init(r5_progress_part *part, const r5_progress *parent, double lo,
						       double hi, const char *stage)
{
	if (!parent || !parent->report)
		return NULL;
	part->parent = parent;
	part->lo = lo;
	part->hi = hi;
	part->stage = stage;
	part->hook.report = r5_progress_part_report;
	part->hook.user = part;
	return &part->hook;
}

#endif
