/* Dimension helpers (dims.h). */
#include "dims.h"

#include <stdio.h>
#include <string.h>

void r5_dims_ones(long dims[R5_DIMS])
{
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
}

void r5_dims_copy(long dst[R5_DIMS], const long src[R5_DIMS])
{
	memcpy(dst, src, sizeof(long) * R5_DIMS);
}

int r5_dims_equal(const long a[R5_DIMS], const long b[R5_DIMS])
{
	for (int d = 0; d < R5_DIMS; d++)
		if (a[d] != b[d])
			return 0;
	return 1;
}

long r5_dims_size(const long dims[R5_DIMS])
{
	long n = 1;
	for (int d = 0; d < R5_DIMS; d++) {
		if (dims[d] <= 0)
			return -1;
		if (n > (long)(((unsigned long)-1 >> 1) / (unsigned long)dims[d]))
			return -1;
		n *= dims[d];
	}
	return n;
}

void r5_dims_strides(long strides[R5_DIMS], const long dims[R5_DIMS])
{
	long s = 1;
	for (int d = 0; d < R5_DIMS; d++) {
		strides[d] = s;
		s *= dims[d];
	}
}

void r5_dims_strides_bcast(long strides[R5_DIMS], const long dims[R5_DIMS])
{
	r5_dims_strides(strides, dims);
	for (int d = 0; d < R5_DIMS; d++)
		if (dims[d] == 1)
			strides[d] = 0;
}

const char *r5_dims_format(char *text, size_t size, const long dims[R5_DIMS])
{
	int last = 0;
	for (int d = 0; d < R5_DIMS; d++)
		if (dims[d] != 1)
			last = d;
	size_t used = 0;
	used += (size_t)snprintf(text, size, "[");
	for (int d = 0; d <= last && used < size; d++)
		used += (size_t)snprintf(text + used, size - used, d ? " %ld" : "%ld", dims[d]);
	if (used < size)
		snprintf(text + used, size - used, "]");
	return text;
}
