/* The parameters the OpenRecon label offers (r5_recon_params_describe rows with an id,
 * recon5t openrecon-label) are ones the server takes: every id with its default, every choice
 * value, the ends of every range, set by r5_recon_params_set (the check a gRPC or MRD request's
 * parameters pass) and then r5_recon_params_check; ids unique, letters and digits, at most 14;
 * the pipeline offered first, as the choice `config`; defaults equal to r5_recon_defaults
 * (r5_recon_params_is_default), a changed value not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recon/pipeline/pipeline.h"

static void expect_accepted(const char *id, const char *value)
{
	r5_recon_params p = r5_recon_defaults;
	r5_status st = r5_recon_params_set(&p, id, value);
	if (st != R5_OK)
		fail_msg("label parameter %s = %s refused: %s", id, value, r5_last_error());
	st = r5_recon_params_check(&p);
	if (st != R5_OK)
		fail_msg("label parameter %s = %s fails the check: %s", id, value, r5_last_error());
}

/* booleans as mrd.c turns OpenRecon's JSON true/false into text */
static const char *wire_value(const r5_param_info *info, const char *text)
{
	if (!strcmp(info->type, "boolean"))
		return !strcmp(text, "true") ? "1" : "0";
	return text;
}

static void test_label_parameters_accepted(void **state)
{
	(void)state;
	int offered = 0;
	const char *ids[64];
	for (size_t row = 0; row < r5_recon_params_count(); row++) {
		r5_param_info info;
		assert_int_equal(r5_recon_params_describe(row, &info), R5_OK);
		if (!info.openrecon_id)
			continue;
		const char *id = info.openrecon_id;
		if (offered == 0) {
			assert_string_equal(id, "config");
			assert_string_equal(info.type, "choice");
			assert_string_equal(info.key, "pipeline");
		}
		assert_true(id[0] != '\0');
		for (const char *c = id; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
				fail_msg("id %s: only letters and digits", id);
		for (int i = 0; i < offered; i++)
			if (!strcmp(ids[i], id))
				fail_msg("id %s offered twice", id);
		assert_non_null(info.label);
		ids[offered++] = id;
		assert_true(offered <= 14);
		const char *types[] = {"int", "double", "string", "boolean", "choice"};
		int known = 0;
		for (int i = 0; i < 5; i++)
			known |= !strcmp(info.type, types[i]);
		assert_true(known);
		expect_accepted(id, wire_value(&info, info.default_text));
		assert_true(r5_recon_params_is_default(id, wire_value(&info, info.default_text)));
		if (!strcmp(info.type, "choice")) {
			int has_default = 0;
			for (int i = 0; info.choices[i]; i++) {
				expect_accepted(id, info.choices[i]);
				has_default |= !strcmp(info.choices[i], info.default_text);
			}
			assert_true(has_default);
		} else if (!strcmp(info.type, "boolean")) {
			expect_accepted(id, "0");
			expect_accepted(id, "1");
		} else if (!strcmp(info.type, "int") || !strcmp(info.type, "double")) {
			char text[64];
			snprintf(text, sizeof text, "%.17g", info.min);
			expect_accepted(id, text);
			snprintf(text, sizeof text, "%.17g", info.max);
			expect_accepted(id, text);
			double v = strtod(info.default_text, NULL);
			assert_true(v >= info.min && v <= info.max);
			/* a value past the range is refused: the label's range is the server's */
			snprintf(text, sizeof text, "%.17g", info.max + 1);
			r5_recon_params p = r5_recon_defaults;
			assert_int_equal(r5_recon_params_set(&p, id, text), R5_EINVAL);
		}
	}
	assert_true(offered >= 1 && offered <= 14);
	printf("label offers %d parameters, all accepted by r5_recon_params_set\n", offered);
}

static void test_is_default(void **state)
{
	(void)state;
	/* the bare key sets every pipeline's: 30 is sense's default, not grasp's (20) */
	assert_false(r5_recon_params_is_default("iters", "30"));
	assert_true(r5_recon_params_is_default("grasp.iters", "20"));
	/* the label's id sets the rows whose default is 30: sense and cs */
	assert_true(r5_recon_params_is_default("senseIters", "30"));
	assert_false(r5_recon_params_is_default("senseIters", "31"));
	r5_recon_params q = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&q, "senseIters", "44"), R5_OK);
	assert_int_equal(q.sense.iters, 44);
	assert_int_equal(q.grasp.iters, 20);
	assert_int_equal(q.realtime.iters, 5);
	assert_int_equal(r5_recon_params_check_applies(&q, "cs"), R5_OK);
	assert_int_equal(r5_recon_params_check_applies(&q, "grasp"), R5_EINVAL);
	assert_true(r5_recon_params_is_default("coilsVirtual", "0"));
	assert_false(r5_recon_params_is_default("coilsVirtual", "8"));
	assert_false(r5_recon_params_is_default("nonsense", "1"));
	assert_false(r5_recon_params_is_default("iters", "abc"));
	/* an OpenRecon id names its key: sets what the key sets */
	r5_recon_params p = r5_recon_defaults;
	assert_int_equal(r5_recon_params_set(&p, "frameSpokes", "13"), R5_OK);
	assert_int_equal(p.grid.frame_spokes, 13);
	assert_int_equal(r5_recon_params_set(&p, "config", "grappa"), R5_OK);
	assert_string_equal(p.pipeline, "grappa");
	assert_int_equal(r5_recon_params_describe(r5_recon_params_count(), &(r5_param_info){0}), R5_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_label_parameters_accepted),
					   cmocka_unit_test(test_is_default)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
