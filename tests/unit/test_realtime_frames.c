/* The real-time frame schedule (service/server/realtime_frames.h), against a brute-force count:
 * for every (spokes, frame_spokes, frame_step) up to 60 x 12 x 12, frame f is due exactly when
 * its last spoke f * frame_step + frame_spokes - 1 has arrived, frames come in order, each
 * window starts at f * frame_step, and the count at the end is
 * floor((n - frame_spokes) / frame_step) + 1 (0 when n < frame_spokes). Feeding the spokes one
 * at a time or in batches of any size schedules the same frames, each exactly once.
 * Zero or negative sizes schedule nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "service/server/realtime_frames.h"

static void test_due_matches_brute_force(void **state)
{
	(void)state;
	for (long fs = 1; fs <= 12; fs++)
		for (long step = 1; step <= 12; step++)
			for (long n = 0; n <= 60; n++) {
				long brute = 0; /* frames whose last spoke index < n */
				for (long f = 0; f * step + fs - 1 < n; f++)
					brute++;
				assert_int_equal(r5_rt_frames_due(n, fs, step), brute);
				long formula = n < fs ? 0 : (n - fs) / step + 1;
				assert_int_equal(r5_rt_frames_due(n, fs, step), formula);
			}
}

static void test_windows(void **state)
{
	(void)state;
	assert_int_equal(r5_rt_first_spoke(0, 5), 0);
	assert_int_equal(r5_rt_first_spoke(3, 5), 15);
	assert_int_equal(r5_rt_spokes_needed(3, 21, 5), 36);
	/* frame f is due with exactly spokes_needed(f) spokes, not one fewer */
	for (long f = 0; f < 50; f++) {
		long need = r5_rt_spokes_needed(f, 21, 5);
		assert_true(r5_rt_frames_due(need, 21, 5) == f + 1);
		assert_true(r5_rt_frames_due(need - 1, 21, 5) == f);
	}
}

/* As the server runs it: after each batch, frames next .. due - 1 are scheduled. */
static void test_batches_schedule_each_frame_once(void **state)
{
	(void)state;
	for (long batch = 1; batch <= 40; batch++) {
		long fs = 21, step = 5, n = 333, next = 0, made = 0;
		int seen[100] = {0};
		for (long have = 0; have < n;) {
			have = have + batch < n ? have + batch : n;
			long due = r5_rt_frames_due(have, fs, step);
			for (long f = next; f < due; f++) {
				assert_true(f < 100);
				assert_int_equal(f, made); /* in order */
				assert_true(r5_rt_spokes_needed(f, fs, step) <= have);
				seen[f]++;
				made++;
			}
			if (due > next)
				next = due;
		}
		assert_int_equal(made, (n - fs) / step + 1);
		for (long f = 0; f < made; f++)
			assert_int_equal(seen[f], 1);
	}
}

static void test_degenerate(void **state)
{
	(void)state;
	assert_int_equal(r5_rt_frames_due(100, 0, 5), 0);
	assert_int_equal(r5_rt_frames_due(100, -3, 5), 0);
	assert_int_equal(r5_rt_frames_due(100, 21, 0), 0);
	assert_int_equal(r5_rt_frames_due(20, 21, 21), 0);
	assert_int_equal(r5_rt_frames_due(21, 21, 21), 1);
	assert_int_equal(r5_rt_frames_due(4221, 21, 21), 201);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_matches_brute_force),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_batches_schedule_each_frame_once),
		cmocka_unit_test(test_degenerate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
