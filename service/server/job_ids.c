/* Job ids of recon5td: "j" + the time of this run's first id (ms since the epoch, base 36,
 * 8 digits) + "-" + the run's counter (at least 4 digits), e.g. "jm5x1c2k9-0001". Ids of an
 * earlier run never come back after a restart (a recycled "j000006" once overwrote and removed
 * an outbox a killed run had left), stay short and printable, and sort by run, then by arrival
 * (up to 9999 jobs a run). The outbox directory of a job is still created exclusively
 * (pacs_out.c), so even a clock set back cannot make one job's files replace another's.
 * Called by admission with the server lock held; touches only s->next_job and s->job_id_run. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server.h"

/* value in base 36, `width` digits (0-9 then a-z: ASCII order is numeric order). */
static void base36(unsigned long long value, int width, char *out)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	for (int i = width - 1; i >= 0; i--) {
		out[i] = digits[value % 36];
		value /= 36;
	}
	out[width] = '\0';
}

void r5_job_id_next(r5_server *s, char *id, size_t size)
{
	if (!s->job_id_run[0]) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		unsigned long long ms = (unsigned long long)t.tv_sec * 1000ull + (unsigned long long)t.tv_nsec / 1000000ull;
		base36(ms, 8, s->job_id_run);
	}
	snprintf(id, size, "j%s-%04ld", s->job_id_run, ++s->next_job);
}
