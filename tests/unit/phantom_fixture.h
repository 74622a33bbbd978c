/* cmocka group fixture for unit tests that write phantom scans: a temporary folder for the
 * group (removed at the end), quieter logs, and phantom → ISMRMRD file → r5_scan (+ its ground
 * truth). Define R5_FIXTURE_PREFIX (e.g. "noise") before including. */
#ifndef R5_TESTS_PHANTOM_FIXTURE_H
#define R5_TESTS_PHANTOM_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "phantoms/phantom.h"
#include "recon/core/log.h"
#include "recon/io/ismrmrd_images.h"
#include "recon/io/scan.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/r5_test_" R5_FIXTURE_PREFIX "_XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	r5_log_set_level(R5_LOG_WARN);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes the phantom as tmpdir/NAME.h5 and reads it back; *truth (if asked) is its ground truth. */
static r5_scan *phantom_file_scan(const struct r5_phantom_params *p, const char *name, r5_array **truth)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.h5", tmpdir, name);
	assert_int_equal(r5_phantom_write(p, path, NULL), R5_OK);
	r5_scan *scan = NULL;
	assert_int_equal(r5_scan_read_ismrmrd(path, NULL, NULL, &scan), R5_OK);
	if (truth)
		assert_int_equal(r5_ismrmrd_read_images(path, NULL, "ground_truth", truth), R5_OK);
	return scan;
}

#endif
