/* BART .cfl/.hdr reader and writer (cfl.h). The host is assumed little endian (x86-64, arm64),
 * as BART assumes. Sizes are checked before anything is allocated. */
#include "cfl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define R5_CFL_MAX_FILE_DIMS 64

/* base path without a .cfl/.hdr suffix */
static r5_status base_name(const char *path, char *base, size_t size)
{
	if (!path || !path[0])
		return r5_set_error(R5_EINVAL, "cfl: empty path");
	size_t n = strlen(path);
	if (n >= 4 && (!strcmp(path + n - 4, ".cfl") || !strcmp(path + n - 4, ".hdr")))
		n -= 4;
	if (n + 5 > size)
		return r5_set_error(R5_EINVAL, "cfl: path too long (%zu characters)", n);
	memcpy(base, path, n);
	base[n] = '\0';
	return R5_OK;
}

static r5_status parse_hdr(FILE *f, const char *hdr_path, long dims[R5_DIMS])
{
	char line[4096];
	int found = 0;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "# Dimensions", 12)) {
			found = 1;
			break;
		}
	}
	if (!found || !fgets(line, sizeof line, f))
		return r5_set_error(R5_EINVAL, "%s: no '# Dimensions' line followed by sizes", hdr_path);
	r5_dims_ones(dims);
	char *p = line, *end = NULL;
	int n = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\r' || *p == '\0')
			break;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno == ERANGE || v < 1)
			return r5_set_error(R5_EINVAL, "%s: dimension %d is not a positive integer", hdr_path, n);
		if (n >= R5_CFL_MAX_FILE_DIMS)
			return r5_set_error(R5_EINVAL, "%s: more than %d dimensions", hdr_path, R5_CFL_MAX_FILE_DIMS);
		if (n >= R5_DIMS && v != 1)
			return r5_set_error(R5_ENOTSUP, "%s: dimension %d is %ld; only %d dimensions are supported",
					    hdr_path, n, v, R5_DIMS);
		if (n < R5_DIMS)
			dims[n] = v;
		n++;
		p = end;
	}
	if (n == 0)
		return r5_set_error(R5_EINVAL, "%s: the dimensions line is empty", hdr_path);
	return R5_OK;
}

r5_status r5_cfl_read_dims(const char *path, long dims[R5_DIMS])
{
	char base[4096], hdr_path[4100];
	R5_TRY(base_name(path, base, sizeof base));
	snprintf(hdr_path, sizeof hdr_path, "%s.hdr", base);
	FILE *f = fopen(hdr_path, "r");
	if (!f)
		return r5_set_error(errno == ENOENT ? R5_ENOTFOUND : R5_EIO, "%s: %s", hdr_path, strerror(errno));
	r5_status s = parse_hdr(f, hdr_path, dims);
	fclose(f);
	if (s != R5_OK)
		return s;
	long n = r5_dims_size(dims);
	if (n < 0 || n > R5_ARRAY_MAX_BYTES / (long)sizeof(float complex)) {
		char text[160];
		return r5_set_error(R5_ERANGE, "%s: dims %s exceed %ld GiB", hdr_path, r5_dims_format(text, sizeof text, dims),
				    R5_ARRAY_MAX_BYTES >> 30);
	}
	return R5_OK;
}

r5_status r5_cfl_read(const char *path, r5_array **out)
{
	*out = NULL;
	long dims[R5_DIMS];
	R5_TRY(r5_cfl_read_dims(path, dims));
	char base[4096], cfl_path[4100];
	R5_TRY(base_name(path, base, sizeof base));
	snprintf(cfl_path, sizeof cfl_path, "%s.cfl", base);
	FILE *f = fopen(cfl_path, "rb");
	if (!f)
		return r5_set_error(errno == ENOENT ? R5_ENOTFOUND : R5_EIO, "%s: %s", cfl_path, strerror(errno));
	struct stat st;
	long n = r5_dims_size(dims);
	long need = n * (long)sizeof(float complex);
	if (fstat(fileno(f), &st) != 0 || (long)st.st_size != need) {
		fclose(f);
		return r5_set_error(R5_EINVAL, "%s has %lld bytes, %s.hdr dims need %ld", cfl_path, (long long)st.st_size,
				    base, need);
	}
	r5_status s = r5_array_alloc_host(dims, out);
	if (s == R5_OK && fread((*out)->data, sizeof(float complex), (size_t)n, f) != (size_t)n) {
		s = r5_set_error(R5_EIO, "%s: short read", cfl_path);
		r5_array_free(*out);
		*out = NULL;
	}
	fclose(f);
	return s;
}

static r5_status write_hdr(const char *hdr_path, const long dims[R5_DIMS])
{
	FILE *f = fopen(hdr_path, "w");
	if (!f)
		return r5_set_error(R5_EIO, "%s: %s", hdr_path, strerror(errno));
	fprintf(f, "# Dimensions\n");
	for (int d = 0; d < R5_DIMS; d++)
		fprintf(f, "%ld%s", dims[d], d + 1 < R5_DIMS ? " " : "\n");
	if (fclose(f) != 0)
		return r5_set_error(R5_EIO, "%s: %s", hdr_path, strerror(errno));
	return R5_OK;
}

/* Writes the elements in column-major order whatever the strides. */
static int write_values(FILE *f, const r5_array *a)
{
	if (r5_array_is_contiguous(a)) {
		size_t n = (size_t)r5_array_size(a);
		return fwrite(a->data, sizeof(float complex), n, f) == n;
	}
	long pos[R5_DIMS] = {0};
	long total = r5_array_size(a);
	for (long i = 0; i < total; i++) {
		long offset = 0;
		for (int d = 0; d < R5_DIMS; d++)
			offset += pos[d] * a->strides[d];
		if (fwrite(a->data + offset, sizeof(float complex), 1, f) != 1)
			return 0;
		for (int d = 0; d < R5_DIMS; d++) {
			if (++pos[d] < a->dims[d])
				break;
			pos[d] = 0;
		}
	}
	return 1;
}

r5_status r5_cfl_write(const char *path, const r5_array *array)
{
	if (!array || array->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "cfl write %s: the array must live on the host", path ? path : "(null)");
	char base[4096], name[4100];
	R5_TRY(base_name(path, base, sizeof base));
	snprintf(name, sizeof name, "%s.hdr", base);
	R5_TRY(write_hdr(name, array->dims));
	snprintf(name, sizeof name, "%s.cfl", base);
	FILE *f = fopen(name, "wb");
	if (!f)
		return r5_set_error(R5_EIO, "%s: %s", name, strerror(errno));
	int ok = write_values(f, array);
	if (fclose(f) != 0)
		ok = 0;
	if (!ok)
		return r5_set_error(R5_EIO, "%s: write failed (%s)", name, strerror(errno));
	return R5_OK;
}
