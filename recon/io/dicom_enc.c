/* DICOM Part 10 encoding, explicit VR little endian: element store, value formatting and
 * padding, serialisation sorted by tag with the group 2 file meta information (PS3.10 §7.1).
 * See dicom_enc.h. */
#include "dicom_enc.h"

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <errno.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef R5_VERSION
#define R5_VERSION "0"
#endif

void r5_dcm_init(r5_dcm_dataset *ds)
{
	memset(ds, 0, sizeof *ds);
}

void r5_dcm_clear(r5_dcm_dataset *ds)
{
	if (!ds)
		return;
	for (size_t i = 0; i < ds->n; i++)
		free(ds->elements[i].value);
	free(ds->elements);
	memset(ds, 0, sizeof *ds);
}

/* Maximum bytes per value for the text VRs (PS3.5 table 6.2-1); 0 = no per-value limit here. */
static size_t vr_max_length(const char *vr)
{
	static const struct {
		const char *vr;
		size_t max;
	} limits[] = {{"AE", 16}, {"AS", 4},  {"CS", 16},   {"DA", 8},    {"DS", 16}, {"DT", 26},
		      {"IS", 12}, {"LO", 64}, {"LT", 10240}, {"PN", 64 * 5}, {"SH", 16}, {"ST", 1024},
		      {"TM", 16}, {"UI", 64}, {"UT", 0}};
	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
		if (!strcmp(limits[i].vr, vr))
			return limits[i].max;
	return 0;
}

static int vr_is_long(const char *vr)
{
	static const char *const long_vrs[] = {"OB", "OD", "OF", "OL", "OW", "SQ", "UC", "UN", "UR", "UT"};
	for (size_t i = 0; i < sizeof long_vrs / sizeof long_vrs[0]; i++)
		if (!strcmp(long_vrs[i], vr))
			return 1;
	return 0;
}

static int vr_is_multivalued_text(const char *vr)
{
	return strcmp(vr, "LT") && strcmp(vr, "ST") && strcmp(vr, "UT");
}

/* Stores (tag, vr, bytes) replacing any element with the same tag; pads odd lengths with pad. */
static void put_raw(r5_dcm_dataset *ds, uint32_t tag, const char *vr, const void *bytes, size_t length, unsigned char pad)
{
	if (ds->error != R5_OK)
		return;
	size_t padded = length + (length & 1);
	if (padded > (vr_is_long(vr) ? 0xFFFFFFFEu : 0xFFFFu)) {
		ds->error = r5_set_error(R5_ERANGE, "DICOM element (%04X,%04X) %s: %zu bytes is too long for its VR",
					 tag >> 16, tag & 0xFFFF, vr, length);
		return;
	}
	unsigned char *value = malloc(padded ? padded : 1);
	if (!value) {
		ds->error = r5_set_error(R5_ENOMEM, "DICOM element (%04X,%04X): %zu bytes", tag >> 16, tag & 0xFFFF, padded);
		return;
	}
	if (length)
		memcpy(value, bytes, length);
	if (padded != length)
		value[length] = pad;
	size_t at = ds->n;
	for (size_t i = 0; i < ds->n; i++)
		if (ds->elements[i].tag == tag)
			at = i;
	if (at == ds->n && ds->n == ds->capacity) {
		size_t capacity = ds->capacity ? 2 * ds->capacity : 64;
		r5_dcm_element *grown = realloc(ds->elements, capacity * sizeof *grown);
		if (!grown) {
			free(value);
			ds->error = r5_set_error(R5_ENOMEM, "DICOM data set: %zu elements", capacity);
			return;
		}
		ds->elements = grown;
		ds->capacity = capacity;
	}
	if (at == ds->n)
		ds->n++;
	else
		free(ds->elements[at].value);
	r5_dcm_element *e = &ds->elements[at];
	e->tag = tag;
	memcpy(e->vr, vr, 2);
	e->vr[2] = 0;
	e->value = value;
	e->length = (uint32_t)padded;
}

void r5_dcm_put_text(r5_dcm_dataset *ds, uint32_t tag, const char *vr, const char *value)
{
	if (ds->error != R5_OK)
		return;
	const char *text = value ? value : "";
	size_t max = vr_max_length(vr);
	if (max) {
		/* the limit holds per value: split on '\\' for the multi-valued VRs */
		const char *start = text;
		for (;;) {
			const char *end = vr_is_multivalued_text(vr) ? strchr(start, '\\') : NULL;
			size_t n = end ? (size_t)(end - start) : strlen(start);
			if (n > max) {
				ds->error = r5_set_error(R5_ERANGE, "DICOM element (%04X,%04X) %s: value of %zu characters exceeds %zu",
							 tag >> 16, tag & 0xFFFF, vr, n, max);
				return;
			}
			if (!end)
				break;
			start = end + 1;
		}
	}
	put_raw(ds, tag, vr, text, strlen(text), strcmp(vr, "UI") ? ' ' : '\0');
}

void r5_dcm_format_ds(double value, char text[17])
{
	if (!isfinite(value) || fabs(value) < 1e-300)
		value = 0.0;
	for (int digits = 15; digits > 0; digits--) {
		char candidate[64];
		snprintf(candidate, sizeof candidate, "%.*g", digits, value);
		if (strlen(candidate) <= 16) {
			memcpy(text, candidate, strlen(candidate) + 1);
			return;
		}
	}
	snprintf(text, 17, "0");
}

void r5_dcm_put_ds(r5_dcm_dataset *ds, uint32_t tag, const double *values, int n)
{
	char joined[17 * 16 + 1] = "";
	if (n > 16) {
		if (ds->error == R5_OK)
			ds->error = r5_set_error(R5_EINTERNAL, "DICOM DS (%04X,%04X): %d values", tag >> 16, tag & 0xFFFF, n);
		return;
	}
	for (int i = 0; i < n; i++) {
		char one[17];
		r5_dcm_format_ds(values[i], one);
		if (i)
			strcat(joined, "\\");
		strcat(joined, one);
	}
	r5_dcm_put_text(ds, tag, "DS", joined);
}

void r5_dcm_put_is(r5_dcm_dataset *ds, uint32_t tag, long value)
{
	char text[24];
	snprintf(text, sizeof text, "%ld", value);
	r5_dcm_put_text(ds, tag, "IS", text);
}

void r5_dcm_put_us(r5_dcm_dataset *ds, uint32_t tag, uint16_t value)
{
	unsigned char le[2] = {(unsigned char)(value & 0xFF), (unsigned char)(value >> 8)};
	put_raw(ds, tag, "US", le, 2, 0);
}

void r5_dcm_put_ul(r5_dcm_dataset *ds, uint32_t tag, uint32_t value)
{
	unsigned char le[4];
	for (int i = 0; i < 4; i++)
		le[i] = (unsigned char)(value >> (8 * i));
	put_raw(ds, tag, "UL", le, 4, 0);
}

void r5_dcm_put_bytes(r5_dcm_dataset *ds, uint32_t tag, const char *vr, const void *bytes, size_t length)
{
	put_raw(ds, tag, vr, bytes, length, 0);
}

static int compare_tags(const void *a, const void *b)
{
	uint32_t ta = (*(const r5_dcm_element *const *)a)->tag, tb = (*(const r5_dcm_element *const *)b)->tag;
	return ta < tb ? -1 : ta > tb;
}

static size_t element_size(const r5_dcm_element *e)
{
	return (vr_is_long(e->vr) ? 12 : 8) + e->length;
}

static unsigned char *write_element(unsigned char *p, const r5_dcm_element *e)
{
	uint16_t group = (uint16_t)(e->tag >> 16), element = (uint16_t)(e->tag & 0xFFFF);
	*p++ = (unsigned char)(group & 0xFF);
	*p++ = (unsigned char)(group >> 8);
	*p++ = (unsigned char)(element & 0xFF);
	*p++ = (unsigned char)(element >> 8);
	*p++ = (unsigned char)e->vr[0];
	*p++ = (unsigned char)e->vr[1];
	if (vr_is_long(e->vr)) {
		*p++ = 0;
		*p++ = 0;
		for (int i = 0; i < 4; i++)
			*p++ = (unsigned char)(e->length >> (8 * i));
	} else {
		*p++ = (unsigned char)(e->length & 0xFF);
		*p++ = (unsigned char)(e->length >> 8);
	}
	if (e->length)
		memcpy(p, e->value, e->length);
	return p + e->length;
}

/* Group 2 (without its group length element, which the caller prepends). */
static r5_status build_meta(r5_dcm_dataset *meta, const char *sop_class, const char *sop_instance)
{
	static const unsigned char version[2] = {0, 1};
	r5_dcm_put_bytes(meta, R5_DCM_TAG(0x0002, 0x0001), "OB", version, 2);
	r5_dcm_put_text(meta, R5_DCM_TAG(0x0002, 0x0002), "UI", sop_class);
	r5_dcm_put_text(meta, R5_DCM_TAG(0x0002, 0x0003), "UI", sop_instance);
	r5_dcm_put_text(meta, R5_DCM_TAG(0x0002, 0x0010), "UI", R5_DCM_TRANSFER_SYNTAX_EXPLICIT_LE);
	r5_dcm_put_text(meta, R5_DCM_TAG(0x0002, 0x0012), "UI", R5_DCM_IMPLEMENTATION_UID);
	char name[17];
	snprintf(name, sizeof name, "RECON5T_%s", R5_VERSION);
	r5_dcm_put_text(meta, R5_DCM_TAG(0x0002, 0x0013), "SH", name);
	return meta->error;
}

r5_status r5_dcm_encode(const r5_dcm_dataset *ds, const char *sop_class, const char *sop_instance,
			unsigned char **bytes, size_t *length)
{
	*bytes = NULL;
	*length = 0;
	if (ds->error != R5_OK)
		return ds->error;
	r5_dcm_dataset meta;
	r5_dcm_init(&meta);
	r5_status s = build_meta(&meta, sop_class, sop_instance);
	size_t n = meta.n + ds->n;
	const r5_dcm_element **order = s == R5_OK ? malloc((n ? n : 1) * sizeof *order) : NULL;
	if (s == R5_OK && !order)
		s = r5_set_error(R5_ENOMEM, "DICOM encode: %zu elements", n);
	if (s != R5_OK) {
		r5_dcm_clear(&meta);
		return s;
	}
	size_t meta_bytes = 0, total = 128 + 4 + 12;
	for (size_t i = 0; i < meta.n; i++) {
		order[i] = &meta.elements[i];
		meta_bytes += element_size(&meta.elements[i]);
	}
	for (size_t i = 0; i < ds->n; i++) {
		if ((ds->elements[i].tag >> 16) == 0x0002) {
			free(order);
			r5_dcm_clear(&meta);
			return r5_set_error(R5_EINTERNAL, "DICOM encode: group 2 element in the data set");
		}
		order[meta.n + i] = &ds->elements[i];
		total += element_size(&ds->elements[i]);
	}
	total += meta_bytes;
	qsort(order, n, sizeof *order, compare_tags);
	unsigned char *out = calloc(1, total);
	if (!out) {
		free(order);
		r5_dcm_clear(&meta);
		return r5_set_error(R5_ENOMEM, "DICOM encode: %zu bytes", total);
	}
	unsigned char *p = out + 128;
	memcpy(p, "DICM", 4);
	p += 4;
	r5_dcm_element group_length = {R5_DCM_TAG(0x0002, 0x0000), "UL", NULL, 4};
	unsigned char le[4] = {(unsigned char)meta_bytes, (unsigned char)(meta_bytes >> 8),
			       (unsigned char)(meta_bytes >> 16), (unsigned char)(meta_bytes >> 24)};
	group_length.value = le;
	p = write_element(p, &group_length);
	for (size_t i = 0; i < n; i++)
		p = write_element(p, order[i]);
	free(order);
	r5_dcm_clear(&meta);
	size_t written = (size_t)(p - out);
	if (written != total) {
		free(out);
		return r5_set_error(R5_EINTERNAL, "DICOM encode: wrote %zu of %zu bytes", written, total);
	}
	*bytes = out;
	*length = total;
	return R5_OK;
}

void r5_dcm_put_at(r5_dcm_dataset *ds, uint32_t tag, const uint32_t *tags, int n)
{
	unsigned char le[4 * 16];
	if (n < 0 || n > 16) {
		if (ds->error == R5_OK)
			ds->error = r5_set_error(R5_EINTERNAL, "DICOM AT (%04X,%04X): %d values", tag >> 16, tag & 0xFFFF, n);
		return;
	}
	for (int i = 0; i < n; i++) {
		le[4 * i] = (unsigned char)(tags[i] >> 16);
		le[4 * i + 1] = (unsigned char)(tags[i] >> 24);
		le[4 * i + 2] = (unsigned char)(tags[i] & 0xFF);
		le[4 * i + 3] = (unsigned char)(tags[i] >> 8);
	}
	put_raw(ds, tag, "AT", le, 4 * (size_t)n, 0);
}

/* Bytes of one item: (FFFE,E000) with its length, then the elements sorted by tag. */
static size_t item_size(const r5_dcm_dataset *item)
{
	size_t size = 8;
	for (size_t i = 0; i < item->n; i++)
		size += element_size(&item->elements[i]);
	return size;
}

static r5_status write_item(unsigned char *p, const r5_dcm_dataset *item, size_t size)
{
	const r5_dcm_element **order = malloc((item->n ? item->n : 1) * sizeof *order);
	if (!order)
		return r5_set_error(R5_ENOMEM, "DICOM sequence item: %zu elements", item->n);
	for (size_t i = 0; i < item->n; i++)
		order[i] = &item->elements[i];
	qsort(order, item->n, sizeof *order, compare_tags);
	static const unsigned char item_tag[4] = {0xFE, 0xFF, 0x00, 0xE0};
	memcpy(p, item_tag, 4);
	for (int i = 0; i < 4; i++)
		p[4 + i] = (unsigned char)((size - 8) >> (8 * i));
	p += 8;
	for (size_t i = 0; i < item->n; i++)
		p = write_element(p, order[i]);
	free(order);
	return R5_OK;
}

void r5_dcm_put_sequence(r5_dcm_dataset *ds, uint32_t tag, const r5_dcm_dataset *items, size_t n_items)
{
	if (ds->error != R5_OK)
		return;
	size_t total = 0;
	for (size_t k = 0; k < n_items; k++) {
		if (items[k].error != R5_OK) {
			ds->error = items[k].error;
			return;
		}
		total += item_size(&items[k]);
	}
	if (total > 0xFFFFFFFEu) {
		ds->error = r5_set_error(R5_ERANGE, "DICOM sequence (%04X,%04X): %zu bytes", tag >> 16, tag & 0xFFFF, total);
		return;
	}
	unsigned char *bytes = malloc(total ? total : 1);
	if (!bytes) {
		ds->error = r5_set_error(R5_ENOMEM, "DICOM sequence (%04X,%04X): %zu bytes", tag >> 16, tag & 0xFFFF, total);
		return;
	}
	size_t at = 0;
	for (size_t k = 0; k < n_items && ds->error == R5_OK; k++) {
		size_t size = item_size(&items[k]);
		r5_status s = write_item(bytes + at, &items[k], size);
		if (s != R5_OK)
			ds->error = s;
		at += size;
	}
	put_raw(ds, tag, "SQ", bytes, total, 0);
	free(bytes);
}

const r5_dcm_element *r5_dcm_find(const r5_dcm_dataset *ds, uint32_t tag)
{
	for (size_t i = 0; i < ds->n; i++)
		if (ds->elements[i].tag == tag)
			return &ds->elements[i];
	return NULL;
}

void r5_dcm_copy(r5_dcm_dataset *ds, const r5_dcm_dataset *from, uint32_t tag)
{
	const r5_dcm_element *e = r5_dcm_find(from, tag);
	if (e)
		put_raw(ds, tag, e->vr, e->value, e->length, 0);
}

r5_status r5_dcm_decode(const unsigned char *bytes, size_t length, r5_dcm_dataset *ds)
{
	r5_dcm_init(ds);
	if (length < 132 || memcmp(bytes + 128, "DICM", 4))
		return r5_set_error(R5_EINVAL, "DICOM decode: no Part 10 preamble");
	size_t p = 132;
	while (p < length && ds->error == R5_OK) {
		if (length - p < 8)
			return r5_set_error(R5_EINVAL, "DICOM decode: truncated element header at byte %zu", p);
		uint32_t tag = ((uint32_t)(bytes[p] | bytes[p + 1] << 8) << 16) | (uint32_t)(bytes[p + 2] | bytes[p + 3] << 8);
		char vr[3] = {(char)bytes[p + 4], (char)bytes[p + 5], 0};
		size_t value_length, header = 8;
		if (vr_is_long(vr)) {
			if (length - p < 12)
				return r5_set_error(R5_EINVAL, "DICOM decode: truncated element header at byte %zu", p);
			value_length = (size_t)bytes[p + 8] | (size_t)bytes[p + 9] << 8 | (size_t)bytes[p + 10] << 16 |
				       (size_t)bytes[p + 11] << 24;
			header = 12;
		} else {
			value_length = (size_t)bytes[p + 6] | (size_t)bytes[p + 7] << 8;
		}
		if (value_length == 0xFFFFFFFFu || value_length > length - p - header)
			return r5_set_error(R5_EINVAL, "DICOM decode: element (%04X,%04X) at byte %zu: bad or undefined length",
					    tag >> 16, tag & 0xFFFF, p);
		if ((tag >> 16) != 0x0002)
			put_raw(ds, tag, vr, bytes + p + header, value_length, 0);
		p += header + value_length;
	}
	return ds->error;
}

/* --- files --- */

r5_status r5_dcm_make_directory(const char *path)
{
	char partial[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof partial)
		return r5_set_error(R5_EINVAL, "DICOM output directory '%s': bad path", path);
	memcpy(partial, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (partial[i] != '/' && partial[i] != 0)
			continue;
		char saved = partial[i];
		partial[i] = 0;
		if (mkdir(partial, 0700) != 0 && errno != EEXIST) /* patient data: ours only */
			return r5_set_error(R5_EIO, "DICOM output directory '%s': %s", partial, strerror(errno));
		partial[i] = saved;
	}
	return R5_OK;
}

r5_status r5_dcm_write_file(const char *path, const unsigned char *bytes, size_t length)
{
	/* patient data: 0600 (also a file of an earlier run, which may be 0644) */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 && fchmod(fd, 0600) == 0 ? fdopen(fd, "wb") : NULL;
	if (!f) {
		r5_status s = r5_set_error(R5_EIO, "DICOM file '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return s;
	}
	size_t written = fwrite(bytes, 1, length, f);
	int closed = fclose(f);
	if (written != length || closed != 0)
		return r5_set_error(R5_EIO, "DICOM file '%s': write failed", path);
	return R5_OK;
}
