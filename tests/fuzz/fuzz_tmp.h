/* A private temporary folder for harnesses that must hand files to a reader: made once under
 * $TMPDIR (or /tmp), its files rewritten per input, removed at exit. Nothing is written outside. */
#ifndef R5_FUZZ_TMP_H
#define R5_FUZZ_TMP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char r5_fuzz_dir[512];
static const char *r5_fuzz_files[4];
static int r5_fuzz_nfiles;

static void r5_fuzz_cleanup(void)
{
	char path[600];
	for (int i = 0; i < r5_fuzz_nfiles; i++) {
		snprintf(path, sizeof path, "%s/%s", r5_fuzz_dir, r5_fuzz_files[i]);
		unlink(path);
	}
	if (r5_fuzz_dir[0])
		rmdir(r5_fuzz_dir);
}

/* Registers the file names the harness uses (string literals) and makes the folder. */
static int r5_fuzz_tmp_init(const char *const *names, int n)
{
	if (r5_fuzz_dir[0])
		return 0;
	const char *tmp = getenv("TMPDIR");
	snprintf(r5_fuzz_dir, sizeof r5_fuzz_dir, "%s/r5fuzzXXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(r5_fuzz_dir)) {
		r5_fuzz_dir[0] = '\0';
		return -1;
	}
	for (int i = 0; i < n && i < 4; i++)
		r5_fuzz_files[r5_fuzz_nfiles++] = names[i];
	atexit(r5_fuzz_cleanup);
	return 0;
}

static int r5_fuzz_write(const char *name, const void *data, size_t size)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", r5_fuzz_dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(data, 1, size, f) == size;
	return fclose(f) == 0 && ok ? 0 : -1;
}

#endif
