/* The metrics registry and its Prometheus exposition (service/server/metrics.c): histogram
 * buckets (cumulative, +Inf, _sum, _count), label escaping, and counts exact under two threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "service/server/metrics.h"

static void test_histogram_buckets(void **state)
{
	(void)state;
	static r5_histogram h;
	r5_histogram_observe(&h, 0.0005); /* le 0.001 */
	r5_histogram_observe(&h, 0.001);  /* le 0.001: bounds are inclusive */
	r5_histogram_observe(&h, 0.3);    /* le 0.5 */
	r5_histogram_observe(&h, 100.0);  /* +Inf only */
	r5_mbuf b = {0};
	r5_mbuf_histogram(&b, "x_seconds", "a=\"1\"", &h);
	assert_false(b.failed);
	assert_non_null(strstr(b.text, "x_seconds_bucket{a=\"1\",le=\"0.001\"} 2\n"));
	assert_non_null(strstr(b.text, "x_seconds_bucket{a=\"1\",le=\"0.25\"} 2\n"));
	assert_non_null(strstr(b.text, "x_seconds_bucket{a=\"1\",le=\"0.5\"} 3\n"));
	assert_non_null(strstr(b.text, "x_seconds_bucket{a=\"1\",le=\"30\"} 3\n"));
	assert_non_null(strstr(b.text, "x_seconds_bucket{a=\"1\",le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(b.text, "x_seconds_sum{a=\"1\"} 100.3015\n"));
	assert_non_null(strstr(b.text, "x_seconds_count{a=\"1\"} 4\n"));
	r5_mbuf_free(&b);
	static r5_histogram empty;
	r5_mbuf_histogram(&b, "y", "", &empty);
	assert_non_null(strstr(b.text, "y_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n"));
	r5_mbuf_free(&b);
}

static void test_escaping(void **state)
{
	(void)state;
	r5_mbuf b = {0};
	r5_mbuf_label_value(&b, "a\\b\"c\nd");
	assert_string_equal(b.text, "a\\\\b\\\"c\\nd");
	r5_mbuf_free(&b);
	/* the buffer grows past its first allocation */
	for (int i = 0; i < 2000; i++)
		r5_mbuf_printf(&b, "%04d\n", i);
	assert_int_equal(b.len, 10000);
	assert_memory_equal(b.text + 9995, "1999\n", 5);
	r5_mbuf_free(&b);
}

#define N_PER_THREAD 100000
static r5_histogram shared;
static void *observe_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < N_PER_THREAD; i++) {
		r5_histogram_observe(&shared, 0.5);
		r5_metrics_ingest_bytes(3);
		r5_metrics_call_handled(1, 3, 0.002); /* Reconstruct, INVALID_ARGUMENT */
		r5_metrics_stage(i % 2 ? "fft" : "coil maps", 0.01);
	}
	return NULL;
}

static void test_two_threads(void **state)
{
	(void)state;
	/* the cost of one call's two recordings (started + handled with its histogram), one thread */
	struct timespec a, z;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 1000000; i++) {
		r5_metrics_call_started(2);
		r5_metrics_call_handled(2, 0, 0.0001);
	}
	clock_gettime(CLOCK_MONOTONIC, &z);
	printf("per call: %.1f ns (started + handled)\n", ((double)(z.tv_sec - a.tv_sec) * 1e9 + (double)(z.tv_nsec - a.tv_nsec)) / 1e6);
	fflush(stdout);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, observe_many, NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	r5_mbuf b = {0};
	r5_mbuf_histogram(&b, "z", "", &shared);
	assert_non_null(strstr(b.text, "z_bucket{le=\"0.25\"} 0\n"));
	assert_non_null(strstr(b.text, "z_bucket{le=\"0.5\"} 200000\n"));
	assert_non_null(strstr(b.text, "z_sum 100000\nz_count 200000\n"));
	r5_mbuf_free(&b);
	r5_metrics_write(NULL, &b);
	assert_false(b.failed);
	assert_non_null(strstr(b.text, "recon5t_ingest_bytes_total 600000\n"));
	assert_non_null(strstr(b.text, "grpc_server_handled_total{grpc_type=\"bidi_stream\",grpc_service=\"recon5t.v1.Recon\","
				       "grpc_method=\"Reconstruct\",grpc_code=\"INVALID_ARGUMENT\"} 200000\n"));
	assert_non_null(strstr(b.text, "recon5t_stage_seconds_count{stage=\"fft\"} 100000\n"));
	assert_non_null(strstr(b.text, "recon5t_stage_seconds_count{stage=\"coil maps\"} 100000\n"));
	assert_non_null(strstr(b.text, "# TYPE grpc_server_handling_seconds histogram\n"));
	/* one slot per stage name: no duplicate series */
	const char *first = strstr(b.text, "recon5t_stage_seconds_count{stage=\"fft\"}");
	assert_null(strstr(first + 1, "recon5t_stage_seconds_count{stage=\"fft\"}"));
	r5_mbuf_free(&b);
}

/* built without libmicrohttpd (as this test compiles metrics.c): "" is fine, an address is refused
 * with a message naming the key */
static void test_no_endpoint(void **state)
{
	(void)state;
	int port = -1;
	assert_int_equal(r5_metrics_start(NULL, "", &port), R5_OK);
	assert_int_equal(port, 0);
	assert_int_equal(r5_metrics_start(NULL, "127.0.0.1:0", &port), R5_ENOTSUP);
	assert_non_null(strstr(r5_last_error(), "metrics_listen 127.0.0.1:0"));
	assert_non_null(strstr(r5_last_error(), "libmicrohttpd"));
	r5_metrics_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_histogram_buckets),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_no_endpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
