/* PNG previews with libpng (png.h). */
#include "png.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <png.h>

typedef struct plane {
	long width, height, stride_w, stride_h; /* elements */
	long axis_w, axis_h;                    /* which of x, y, z */
} plane;

static void plane_of(const r5_array *a, plane *p)
{
	int axes[3], n = 0;
	for (int d = 0; d < 3; d++)
		if (a->dims[d] > 1)
			axes[n++] = d;
	p->axis_w = n > 0 ? axes[0] : 0;
	p->axis_h = n > 1 ? axes[1] : (p->axis_w == 0 ? 1 : p->axis_w + 1 < 3 ? p->axis_w + 1 : 0);
	p->width = a->dims[p->axis_w];
	p->height = a->dims[p->axis_h];
	p->stride_w = a->strides[p->axis_w];
	p->stride_h = a->strides[p->axis_h];
}

/* 99.5th percentile of |a| by a histogram (O(n), no sorting). 1 when all zero. */
static float magnitude_percentile(const r5_array *a)
{
	long n = r5_array_size(a);
	float peak = 0;
	for (long i = 0; i < n; i++)
		peak = fmaxf(peak, cabsf(a->data[i]));
	if (!(peak > 0) || !isfinite(peak))
		return 1.0f;
	enum { BINS = 4096 };
	long *hist = calloc(BINS, sizeof *hist);
	if (!hist)
		return peak;
	for (long i = 0; i < n; i++) {
		long b = (long)(cabsf(a->data[i]) / peak * (BINS - 1));
		hist[b < 0 ? 0 : b >= BINS ? BINS - 1 : b]++;
	}
	long want = (long)ceil(0.995 * (double)n), seen = 0;
	int b = 0;
	for (; b < BINS; b++) {
		seen += hist[b];
		if (seen >= want)
			break;
	}
	free(hist);
	float v = peak * (float)(b + 1) / (float)(BINS - 1);
	return v > peak ? peak : v;
}

static r5_status write_plane(const char *path, const float complex *data, const plane *p, float scale)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return r5_set_error(R5_EIO, "PNG %s: %s", path, strerror(errno));
	unsigned char *row = malloc((size_t)p->width);
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!row || !png || !info) {
		png_destroy_write_struct(&png, info ? &info : NULL);
		free(row);
		fclose(f);
		return r5_set_error(R5_ENOMEM, "PNG %s", path);
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(row);
		fclose(f);
		return r5_set_error(R5_EIO, "PNG %s: libpng failed", path);
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)p->width, (png_uint_32)p->height, 8, PNG_COLOR_TYPE_GRAY,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (long y = 0; y < p->height; y++) {
		for (long x = 0; x < p->width; x++) {
			float v = cabsf(data[y * p->stride_h + x * p->stride_w]) / scale * 255.0f;
			row[x] = (unsigned char)(v >= 255.0f ? 255 : v > 0 ? lrintf(v) : 0);
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	if (fclose(f) != 0)
		return r5_set_error(R5_EIO, "PNG %s: %s", path, strerror(errno));
	return R5_OK;
}

r5_status r5_png_write_magnitude(const char *path, const r5_array *image)
{
	if (!path || !image || image->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "PNG: need a path and a host image");
	int big = 0;
	for (int d = 0; d < R5_DIMS; d++)
		if (image->dims[d] > 1 && (d >= 3 || ++big > 2))
			return r5_set_error(R5_EINVAL, "PNG %s: the image has more than two dimensions", path);
	if (image->dims[0] > 65535 || image->dims[1] > 65535 || image->dims[2] > 65535)
		return r5_set_error(R5_ERANGE, "PNG %s: image too large", path);
	plane p;
	plane_of(image, &p);
	return write_plane(path, image->data, &p, magnitude_percentile(image));
}

static void file_name(char *name, size_t size, const char *dir, const long dims[R5_DIMS], const long pos[R5_DIMS],
		      long partition)
{
	int n = snprintf(name, size, "%s/img_s%ld_c%ld_r%ld_p%ld", dir, pos[R5_DIM_SLICE], pos[R5_DIM_TE],
			 pos[R5_DIM_TIME], partition);
	const struct {
		int dim;
		const char *tag;
	} extra[] = {{R5_DIM_MAP, "m"}, {R5_DIM_TIME2, "t"}, {R5_DIM_AVG, "a"}, {R5_DIM_COEFF, "e"}};
	for (size_t i = 0; i < sizeof extra / sizeof extra[0] && n > 0 && (size_t)n < size; i++)
		if (dims[extra[i].dim] > 1)
			n += snprintf(name + n, size - (size_t)n, "_%s%ld", extra[i].tag, pos[extra[i].dim]);
	if (n > 0 && (size_t)n < size)
		snprintf(name + n, size - (size_t)n, ".png");
}

r5_status r5_png_write_set(const char *dir, const r5_image_set *set)
{
	if (!dir || !set || !set->images || set->images->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "PNG: need a directory and host images");
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return r5_set_error(R5_EIO, "PNG directory %s: %s", dir, strerror(errno));
	const r5_array *a = set->images;
	plane p;
	plane_of(a, &p);
	/* the axis among x, y, z that is not in the plane gives the partitions */
	long axis_p = 3 - p.axis_w - p.axis_h, parts = a->dims[axis_p];
	long outer = 1;
	for (int d = 3; d < R5_DIMS; d++)
		outer *= a->dims[d];
	long keep = parts, budget = R5_PNG_MAX_FILES / (outer > 0 ? outer : 1);
	if (keep > budget)
		keep = budget > 0 ? budget : 1;
	float scale = magnitude_percentile(a);
	long pos[R5_DIMS] = {0};
	for (long o = 0; o < outer; o++) {
		long base = 0;
		for (int d = 3; d < R5_DIMS; d++)
			base += pos[d] * a->strides[d];
		for (long k = 0; k < keep && o * keep + k < R5_PNG_MAX_FILES; k++) {
			long part = keep == parts ? k : (k * parts + parts / 2) / keep;
			char name[4096];
			file_name(name, sizeof name, dir, a->dims, pos, part);
			R5_TRY(write_plane(name, a->data + base + part * a->strides[axis_p], &p, scale));
		}
		for (int d = 3; d < R5_DIMS; d++) {
			if (++pos[d] < a->dims[d])
				break;
			pos[d] = 0;
		}
	}
	return R5_OK;
}

r5_status r5_png_write_rgb(const char *path, long width, long height, const unsigned char *rgb)
{
	if (!path || !rgb || width < 1 || height < 1 || width > 65535 || height > 65535)
		return r5_set_error(R5_EINVAL, "PNG %s: need a path and 1..65535 x 1..65535 RGB pixels", path ? path : "?");
	FILE *f = fopen(path, "wb");
	if (!f)
		return r5_set_error(R5_EIO, "PNG %s: %s", path, strerror(errno));
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!png || !info) {
		png_destroy_write_struct(&png, info ? &info : NULL);
		fclose(f);
		return r5_set_error(R5_ENOMEM, "PNG %s", path);
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		fclose(f);
		return r5_set_error(R5_EIO, "PNG %s: libpng failed", path);
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (long y = 0; y < height; y++)
		png_write_row(png, (png_const_bytep)(rgb + 3 * (size_t)width * (size_t)y));
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	if (fclose(f) != 0)
		return r5_set_error(R5_EIO, "PNG %s: %s", path, strerror(errno));
	return R5_OK;
}
