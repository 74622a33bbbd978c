/* DICOM Enhanced MR Image Storage writer (PS3.3 A.36.2): one multi-frame instance per 3D volume
 * or 2D slice stack, built from the classic writer's instances (dicom.c) read back with
 * r5_dcm_decode, so that pixels, scaling, window, identity and geometry are the classic ones by
 * construction. Conventions and API in dicom.h.
 *
 * Modules: Patient, General Study, General Series, MR Series (C.8.13.6), Frame of Reference,
 * General Equipment, Enhanced General Equipment (C.7.5.2), Image Pixel, Multi-frame Functional
 * Groups (C.7.6.16), Multi-frame Dimension (C.7.6.17), Acquisition Context (C.7.6.14, empty),
 * Enhanced MR Image (C.8.13.1), SOP Common. The frames are DERIVED (a reconstruction), so the
 * MR Pulse Sequence module and the MR acquisition functional groups (timing, FOV/geometry, coils,
 * modifiers, averages), which are required only for ORIGINAL frames, are not written; MR Echo is
 * written when the header knows TE.
 * Functional groups — shared: Pixel Measures, Plane Orientation (per frame when a 2D stack's
 * slices are not parallel), Frame Anatomy, Pixel Value Transformation (identity: stored values
 * as in the classic series, their meaning stated in DerivationDescription), Frame VOI LUT, MR
 * Image Frame Type, Derivation Image, MR Echo; per frame: Frame Content, Plane Position.
 * Dimensions: Stack ID, In-Stack Position Number (rank of the frame along the slice normal).
 * Values DICOM requires that the header cannot give: body part unknown, so Frame Anatomy says
 * "Entire body" (SCT 38266002), laterality U; Enhanced General Equipment's Type 1 model and
 * serial number are "unknown" when the header lacks them; ApplicableSafetyStandardAgency (Type 1
 * in dciodvfy's tables) is IEC (60601-2-33, the international MR safety standard). The classic
 * DerivationDescription (how the pixels were made) goes into ImageComments. */
#include "dicom.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dicom_enc.h"

#define ENHANCED_MR_IMAGE_STORAGE "1.2.840.10008.5.1.4.1.1.4.1"
#define T(g, e) R5_DCM_TAG(0x##g, 0x##e)

struct r5_dicom_enhanced {
	const r5_image_set *set;
	r5_dicom_writer *classic;
	long n_partitions, n_slices, n_frames, n_volumes;
	char series_uid[R5_DICOM_N_KINDS][65], dimension_uid[65];
	char (*instance_uid)[65]; /* [kind * n_volumes + volume] */
};

/* Tags copied unchanged from the first frame's classic instance (identity modules). */
static const uint32_t copied_tags[] = {
	T(0008, 0005), T(0008, 0012), T(0008, 0013), T(0008, 0020), T(0008, 0021), T(0008, 0023), T(0008, 0030),
	T(0008, 0031), T(0008, 0033), T(0008, 0050), T(0008, 0060), T(0008, 0070), T(0008, 0080), T(0008, 0090),
	T(0008, 1010), T(0008, 1030), T(0008, 1090), T(0010, 0010), T(0010, 0020), T(0010, 0030), T(0010, 0040),
	T(0010, 1030), T(0012, 0062), T(0012, 0063), T(0012, 0064), T(0018, 0087), T(0018, 1020), T(0018, 1030), T(0018, 5100), T(0020, 000D), T(0020, 0010),
	T(0020, 0052), T(0020, 1040), T(0028, 0002), T(0028, 0004), T(0028, 0010), T(0028, 0011), T(0028, 0100),
	T(0028, 0101), T(0028, 0102), T(0028, 0103), T(0028, 0301), T(0028, 0303)};

static int kind_present(const r5_dicom_enhanced *e, r5_dicom_kind kind)
{
	return r5_dicom_writer_count(e->classic, kind) > 0;
}

r5_status r5_dicom_enhanced_create(const r5_image_set *set, const r5_dicom_request *req, r5_dicom_enhanced **out)
{
	*out = NULL;
	r5_dicom_writer *classic;
	R5_TRY(r5_dicom_writer_create(set, req, &classic));
	r5_dicom_enhanced *e = calloc(1, sizeof *e);
	if (!e) {
		r5_dicom_writer_destroy(classic);
		return r5_set_error(R5_ENOMEM, "DICOM enhanced writer");
	}
	e->set = set;
	e->classic = classic;
	e->n_partitions = set->images->dims[R5_DIM_Z];
	e->n_slices = set->images->dims[R5_DIM_SLICE];
	e->n_frames = e->n_partitions * e->n_slices;
	e->n_volumes = r5_dicom_writer_count(classic, R5_DICOM_MAGNITUDE) / e->n_frames;
	e->instance_uid = calloc((size_t)(R5_DICOM_N_KINDS * e->n_volumes), sizeof *e->instance_uid);
	r5_status s = e->instance_uid ? R5_OK : r5_set_error(R5_ENOMEM, "DICOM enhanced writer: %ld UIDs", e->n_volumes);
	for (int k = 0; k < R5_DICOM_N_KINDS && s == R5_OK; k++)
		s = r5_dicom_uid_generate(e->series_uid[k]);
	if (s == R5_OK)
		s = r5_dicom_uid_generate(e->dimension_uid);
	for (long i = 0; i < R5_DICOM_N_KINDS * e->n_volumes && s == R5_OK; i++)
		s = r5_dicom_uid_generate(e->instance_uid[i]);
	if (s != R5_OK) {
		r5_dicom_enhanced_destroy(e);
		return r5_error_context(s, "DICOM enhanced writer");
	}
	*out = e;
	return R5_OK;
}

void r5_dicom_enhanced_destroy(r5_dicom_enhanced *e)
{
	if (!e)
		return;
	r5_dicom_writer_destroy(e->classic);
	free(e->instance_uid);
	free(e);
}

long r5_dicom_enhanced_count(const r5_dicom_enhanced *e, r5_dicom_kind kind)
{
	return e && (unsigned)kind < R5_DICOM_N_KINDS && kind_present(e, kind) ? e->n_volumes : 0;
}

long r5_dicom_enhanced_frames(const r5_dicom_enhanced *e)
{
	return e ? e->n_frames : 0;
}

const char *r5_dicom_enhanced_series_uid(const r5_dicom_enhanced *e, r5_dicom_kind kind)
{
	return (unsigned)kind < R5_DICOM_N_KINDS ? e->series_uid[kind] : "";
}

void r5_dicom_enhanced_path(r5_dicom_kind kind, long index, char *path, size_t size)
{
	snprintf(path, size, "%s/MF_%05ld.dcm", r5_dicom_kind_name(kind), index + 1);
}

/* Classic instance index of frame `frame` (partition fastest, then slice) of volume `volume`
 * (index over the other dimensions 3..15 except slice, lowest fastest), and its slice and
 * partition for the geometry. Classic indices run over dims 2..15, dim 2 fastest. */
static long classic_index(const r5_dicom_enhanced *e, long volume, long frame, long *slice, long *partition)
{
	const long *dims = e->set->images->dims;
	long pos[R5_DIMS] = {0};
	pos[R5_DIM_Z] = frame % e->n_partitions;
	pos[R5_DIM_SLICE] = frame / e->n_partitions;
	for (int d = 3; d < R5_DIMS; d++)
		if (d != R5_DIM_SLICE) {
			pos[d] = volume % dims[d];
			volume /= dims[d];
		}
	long index = 0, stride = 1;
	for (int d = 2; d < R5_DIMS; d++) {
		index += pos[d] * stride;
		stride *= dims[d];
	}
	*partition = pos[R5_DIM_Z];
	*slice = pos[R5_DIM_SLICE] < e->set->n_slices ? pos[R5_DIM_SLICE] : e->set->n_slices - 1;
	return index;
}

/* FD: one IEEE double, little endian whatever the host's byte order. */
static void put_fd(r5_dcm_dataset *ds, uint32_t tag, double value)
{
	uint64_t bits;
	unsigned char le[8];
	memcpy(&bits, &value, sizeof bits);
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(bits >> (8 * i));
	r5_dcm_put_bytes(ds, tag, "FD", le, sizeof le);
}

/* Puts item as the single item of a sequence, then empties it for the next use. */
static void put_single(r5_dcm_dataset *ds, uint32_t tag, r5_dcm_dataset *item)
{
	r5_dcm_put_sequence(ds, tag, item, 1);
	r5_dcm_clear(item);
}

/* ImageType / FrameType and the Common CT/MR and MR Image Description macros (C.8.16.2,
 * C.8.13.3), the same at the top level and in the MR Image Frame Type group. */
static void put_image_description(r5_dcm_dataset *ds, uint32_t type_tag, r5_dicom_kind kind)
{
	/* value 2 is PRIMARY for every enhanced frame (enumerated; SECONDARY is refused), so the
	 * g-factor map differs from the images only in its series and its ImageComments */
	r5_dcm_put_text(ds, type_tag, "CS", "DERIVED\\PRIMARY\\VOLUME\\NONE");
	r5_dcm_put_text(ds, T(0008, 9205), "CS", "MONOCHROME");
	r5_dcm_put_text(ds, T(0008, 9206), "CS", "VOLUME");
	r5_dcm_put_text(ds, T(0008, 9207), "CS", "NONE");
	r5_dcm_put_text(ds, T(0008, 9208), "CS", kind == R5_DICOM_PHASE ? "PHASE" : "MAGNITUDE");
	r5_dcm_put_text(ds, T(0008, 9209), "CS", "UNKNOWN");
}

static void put_code(r5_dcm_dataset *ds, uint32_t tag, const char *value, const char *scheme, const char *meaning)
{
	r5_dcm_dataset code;
	r5_dcm_init(&code);
	r5_dcm_put_text(&code, T(0008, 0100), "SH", value);
	r5_dcm_put_text(&code, T(0008, 0102), "SH", scheme);
	r5_dcm_put_text(&code, T(0008, 0104), "LO", meaning);
	put_single(ds, tag, &code);
}

static void put_orientation(r5_dcm_dataset *ds, const r5_dicom_plane *plane)
{
	r5_dcm_dataset item;
	r5_dcm_init(&item);
	r5_dcm_put_ds(&item, T(0020, 0037), plane->orientation, 6);
	put_single(ds, T(0020, 9116), &item);
}

/* The shared functional groups item (C.7.6.16.1). */
static void put_shared_groups(r5_dcm_dataset *ds, const r5_dicom_enhanced *e, r5_dicom_kind kind,
			      const r5_dcm_dataset *first, const r5_dicom_plane *plane, int shared_orientation)
{
	r5_dcm_dataset groups, item;
	r5_dcm_init(&groups);
	r5_dcm_init(&item);
	r5_dcm_put_ds(&item, T(0028, 0030), plane->spacing, 2);
	r5_dcm_put_ds(&item, T(0018, 0050), &plane->thickness_mm, 1);
	r5_dcm_put_ds(&item, T(0018, 0088), &plane->spacing_between_mm, 1);
	put_single(&groups, T(0028, 9110), &item);
	if (shared_orientation)
		put_orientation(&groups, plane);
	put_code(&item, T(0008, 2218), "38266002", "SCT", "Entire body");
	r5_dcm_put_text(&item, T(0020, 9072), "CS", "U");
	put_single(&groups, T(0020, 9071), &item);
	r5_dcm_put_text(&item, T(0028, 1052), "DS", "0");
	r5_dcm_put_text(&item, T(0028, 1053), "DS", "1");
	r5_dcm_put_text(&item, T(0028, 1054), "LO", "US");
	put_single(&groups, T(0028, 9145), &item);
	r5_dcm_copy(&item, first, T(0028, 1050));
	r5_dcm_copy(&item, first, T(0028, 1051));
	r5_dcm_copy(&item, first, T(0028, 1055));
	put_single(&groups, T(0028, 9132), &item);
	put_image_description(&item, T(0008, 9007), kind);
	put_single(&groups, T(0018, 9226), &item);
	if (e->set->header.te_ms > 0) {
		put_fd(&item, T(0018, 9082), e->set->header.te_ms);
		put_single(&groups, T(0018, 9114), &item);
	}
	put_single(ds, T(5200, 9229), &groups);
}

/* The per-frame functional groups items: Frame Content (stack 1, rank along the normal) and
 * Plane Position (+ Plane Orientation when not shared). */
static void put_per_frame_groups(r5_dcm_dataset *ds, const r5_dicom_enhanced *e, const r5_dicom_plane *planes,
				 int shared_orientation)
{
	r5_dcm_dataset *frames = calloc((size_t)e->n_frames, sizeof *frames);
	if (!frames) {
		if (ds->error == R5_OK)
			ds->error = r5_set_error(R5_ENOMEM, "DICOM enhanced: %ld frame items", e->n_frames);
		return;
	}
	const double *o = planes[0].orientation;
	const double normal[3] = {o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
	for (long f = 0; f < e->n_frames; f++) {
		double along = 0;
		for (int i = 0; i < 3; i++)
			along += planes[f].position[i] * normal[i];
		long rank = 1; /* In-Stack Position Number: 1 + frames lower along the normal (ties by order) */
		for (long g = 0; g < e->n_frames; g++) {
			double other = 0;
			for (int i = 0; i < 3; i++)
				other += planes[g].position[i] * normal[i];
			rank += other < along - 1e-6 || (fabs(other - along) <= 1e-6 && g < f);
		}
		r5_dcm_dataset item;
		r5_dcm_init(&frames[f]);
		r5_dcm_init(&item);
		const uint32_t index_values[2] = {1, (uint32_t)rank};
		unsigned char le[8];
		for (int v = 0; v < 2; v++)
			for (int b = 0; b < 4; b++)
				le[4 * v + b] = (unsigned char)(index_values[v] >> (8 * b));
		r5_dcm_put_bytes(&item, T(0020, 9157), "UL", le, sizeof le);
		r5_dcm_put_text(&item, T(0020, 9056), "SH", "1");
		r5_dcm_put_ul(&item, T(0020, 9057), (uint32_t)rank);
		put_single(&frames[f], T(0020, 9111), &item);
		r5_dcm_put_ds(&item, T(0020, 0032), planes[f].position, 3);
		put_single(&frames[f], T(0020, 9113), &item);
		if (!shared_orientation)
			put_orientation(&frames[f], &planes[f]);
	}
	r5_dcm_put_sequence(ds, T(5200, 9230), frames, (size_t)e->n_frames);
	for (long f = 0; f < e->n_frames; f++)
		r5_dcm_clear(&frames[f]);
	free(frames);
}

/* Multi-frame Dimension module: stack, then position in the stack. */
static void put_dimensions(r5_dcm_dataset *ds, const r5_dicom_enhanced *e)
{
	r5_dcm_dataset item, index[2];
	r5_dcm_init(&item);
	r5_dcm_put_text(&item, T(0020, 9164), "UI", e->dimension_uid);
	put_single(ds, T(0020, 9221), &item);
	static const uint32_t pointers[2] = {T(0020, 9056), T(0020, 9057)};
	static const char *const labels[2] = {"Stack ID", "In-Stack Position Number"};
	for (int d = 0; d < 2; d++) {
		uint32_t group = T(0020, 9111);
		r5_dcm_init(&index[d]);
		r5_dcm_put_at(&index[d], T(0020, 9165), &pointers[d], 1);
		r5_dcm_put_at(&index[d], T(0020, 9167), &group, 1);
		r5_dcm_put_text(&index[d], T(0020, 9164), "UI", e->dimension_uid);
		r5_dcm_put_text(&index[d], T(0020, 9421), "LO", labels[d]);
	}
	r5_dcm_put_sequence(ds, T(0020, 9222), index, 2);
	r5_dcm_clear(&index[0]);
	r5_dcm_clear(&index[1]);
	if (e->n_partitions > 1 && e->n_slices == 1)
		r5_dcm_put_text(ds, T(0020, 9311), "CS", "3D");
}

/* A Type 1 text element: copied from the classic instance, or `fallback` when it is absent or
 * empty there. */
static void put_required_text(r5_dcm_dataset *ds, const r5_dcm_dataset *first, uint32_t tag, const char *vr,
			      const char *fallback)
{
	const r5_dcm_element *have = r5_dcm_find(first, tag);
	if (have && have->length > 0 && have->value[0] != ' ')
		r5_dcm_copy(ds, first, tag);
	else
		r5_dcm_put_text(ds, tag, vr, fallback);
}

/* Everything outside the functional groups: identity from the classic instance, the new
 * series, Enhanced General Equipment, Enhanced MR Image, Acquisition Context, frame count. */
static void put_top_level(r5_dcm_dataset *ds, const r5_dicom_enhanced *e, r5_dicom_kind kind, long volume,
			  const r5_dcm_dataset *first)
{
	for (size_t i = 0; i < sizeof copied_tags / sizeof copied_tags[0]; i++)
		r5_dcm_copy(ds, first, copied_tags[i]);
	r5_dcm_put_text(ds, T(0008, 0016), "UI", ENHANCED_MR_IMAGE_STORAGE);
	r5_dcm_put_text(ds, T(0008, 0018), "UI", e->instance_uid[kind * e->n_volumes + volume]);
	const r5_dcm_element *description = r5_dcm_find(first, T(0008, 103E));
	char text[96] = "";
	if (description)
		snprintf(text, sizeof text, "%.*s", (int)description->length, (const char *)description->value);
	for (size_t n = strlen(text); n > 0 && text[n - 1] == ' '; n--)
		text[n - 1] = 0;
	snprintf(text + strlen(text), sizeof text - strlen(text), " %s", "multi-frame");
	r5_dcm_put_text(ds, T(0008, 103E), "LO", text);
	const r5_dcm_element *number = r5_dcm_find(first, T(0020, 0011));
	long series_number = number ? strtol((const char *)number->value, NULL, 10) : 1;
	r5_dcm_put_is(ds, T(0020, 0011), series_number + 100);
	r5_dcm_put_text(ds, T(0020, 000E), "UI", e->series_uid[kind]);
	r5_dcm_put_is(ds, T(0020, 0013), volume + 1);
	r5_dcm_put_is(ds, T(0028, 0008), e->n_frames);
	put_required_text(ds, first, T(0008, 0070), "LO", "unknown");
	put_required_text(ds, first, T(0008, 1090), "LO", "unknown");
	/* Type 1 here: a de-identified classic instance has them empty (Z), this IOD gets the
	 * profile's D, a dummy */
	put_required_text(ds, first, T(0008, 0023), "DA", "19000101");
	put_required_text(ds, first, T(0008, 0033), "TM", "000000");
	put_required_text(ds, first, T(0018, 1000), "LO", "unknown");
	/* how the pixels were made: the classic DerivationDescription, which is not part of this IOD
	 * outside the Derivation Image group (that one wants a coded derivation), as ImageComments */
	const r5_dcm_element *derivation = r5_dcm_find(first, T(0008, 2111));
	if (derivation)
		r5_dcm_put_bytes(ds, T(0020, 4000), "LT", derivation->value, derivation->length);
	put_image_description(ds, T(0008, 0008), kind);
	r5_dcm_put_text(ds, T(0018, 9004), "CS", "RESEARCH");
	r5_dcm_put_text(ds, T(0018, 9100), "CS", "1H");
	r5_dcm_put_text(ds, T(0018, 9174), "CS", "IEC");
	r5_dcm_put_text(ds, T(2050, 0020), "CS", "IDENTITY");
	r5_dcm_put_text(ds, T(0028, 2110), "CS", "00");
	r5_dcm_put_sequence(ds, T(0040, 0555), NULL, 0);
}

/* Frame f's classic instance, read back: pixels appended to `pixels`, geometry into plane;
 * the first frame's data set is kept in `first`. */
static r5_status read_frame(r5_dicom_enhanced *e, r5_dicom_kind kind, long volume, long f, r5_dcm_dataset *first,
			    unsigned char *pixels, size_t frame_bytes, r5_dicom_plane *plane)
{
	long slice, partition, index = classic_index(e, volume, f, &slice, &partition);
	R5_TRY(r5_dicom_plane_of(e->set, slice, partition, plane));
	unsigned char *bytes;
	size_t length;
	R5_TRY(r5_dicom_writer_encode(e->classic, kind, index, &bytes, &length));
	r5_dcm_dataset frame;
	r5_status s = r5_dcm_decode(bytes, length, &frame);
	free(bytes);
	const r5_dcm_element *pixel_data = s == R5_OK ? r5_dcm_find(&frame, T(7FE0, 0010)) : NULL;
	if (s == R5_OK && (!pixel_data || pixel_data->length != frame_bytes))
		s = r5_set_error(R5_EINTERNAL, "DICOM enhanced: frame %ld has %u pixel bytes, expected %zu", f,
				 pixel_data ? pixel_data->length : 0, frame_bytes);
	if (s == R5_OK)
		memcpy(pixels + (size_t)f * frame_bytes, pixel_data->value, frame_bytes);
	if (s == R5_OK && f == 0)
		*first = frame;
	else
		r5_dcm_clear(&frame);
	return s;
}

static int orientations_equal(const r5_dicom_plane *planes, long n)
{
	for (long f = 1; f < n; f++)
		for (int i = 0; i < 6; i++)
			if (fabs(planes[f].orientation[i] - planes[0].orientation[i]) > 1e-9)
				return 0;
	return 1;
}

r5_status r5_dicom_enhanced_encode(r5_dicom_enhanced *e, r5_dicom_kind kind, long index, unsigned char **bytes,
				   size_t *length)
{
	*bytes = NULL;
	*length = 0;
	if (index < 0 || index >= r5_dicom_enhanced_count(e, kind))
		return r5_set_error(R5_EINVAL, "DICOM enhanced %s instance %ld: out of range (%ld)", r5_dicom_kind_name(kind),
				    index, r5_dicom_enhanced_count(e, kind));
	const long *dims = e->set->images->dims;
	size_t frame_bytes = (size_t)dims[0] * (size_t)dims[1] * 2;
	unsigned char *pixels = malloc(frame_bytes * (size_t)e->n_frames);
	r5_dicom_plane *planes = calloc((size_t)e->n_frames, sizeof *planes);
	r5_dcm_dataset first, ds;
	r5_dcm_init(&first);
	r5_dcm_init(&ds);
	r5_status s = pixels && planes ? R5_OK : r5_set_error(R5_ENOMEM, "DICOM enhanced: %ld frames", e->n_frames);
	for (long f = 0; f < e->n_frames && s == R5_OK; f++)
		s = read_frame(e, kind, index, f, &first, pixels, frame_bytes, &planes[f]);
	if (s == R5_OK) {
		int shared_orientation = orientations_equal(planes, e->n_frames);
		put_top_level(&ds, e, kind, index, &first);
		put_dimensions(&ds, e);
		put_shared_groups(&ds, e, kind, &first, &planes[0], shared_orientation);
		put_per_frame_groups(&ds, e, planes, shared_orientation);
		r5_dcm_put_bytes(&ds, T(7FE0, 0010), "OW", pixels, frame_bytes * (size_t)e->n_frames);
		s = r5_dcm_encode(&ds, ENHANCED_MR_IMAGE_STORAGE, e->instance_uid[kind * e->n_volumes + index], bytes,
				  length);
	}
	free(pixels);
	free(planes);
	r5_dcm_clear(&first);
	r5_dcm_clear(&ds);
	if (s != R5_OK)
		return r5_error_context(s, "DICOM enhanced %s instance %ld", r5_dicom_kind_name(kind), index);
	return R5_OK;
}

static r5_status write_instance(r5_dicom_enhanced *e, r5_dicom_kind kind, long index, const char *dir)
{
	char path[4096], name[64];
	unsigned char *bytes;
	size_t length;
	R5_TRY(r5_dicom_enhanced_encode(e, kind, index, &bytes, &length));
	r5_dicom_enhanced_path(kind, index, name, sizeof name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	r5_status s = r5_dcm_write_file(path, bytes, length);
	free(bytes);
	return s;
}

r5_status r5_dicom_write_enhanced(const r5_image_set *set, const r5_dicom_request *req, unsigned kinds_mask,
				  const char *dir, long *n_written)
{
	long written = 0;
	if (n_written)
		*n_written = 0;
	if (!dir)
		return r5_set_error(R5_EINVAL, "DICOM enhanced: no output directory");
	r5_dicom_enhanced *e;
	R5_TRY(r5_dicom_enhanced_create(set, req, &e));
	r5_status s = R5_OK;
	for (int k = 0; k < R5_DICOM_N_KINDS && s == R5_OK; k++) {
		if (!(kinds_mask & R5_DICOM_KIND_FLAG(k)) || r5_dicom_enhanced_count(e, (r5_dicom_kind)k) == 0)
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, r5_dicom_kind_name((r5_dicom_kind)k));
		s = r5_dcm_make_directory(path);
		for (long i = 0; i < r5_dicom_enhanced_count(e, (r5_dicom_kind)k) && s == R5_OK; i++)
			if ((s = write_instance(e, (r5_dicom_kind)k, i, dir)) == R5_OK)
				written++;
	}
	r5_dicom_enhanced_destroy(e);
	if (n_written)
		*n_written = written;
	return s;
}
