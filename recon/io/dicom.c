/* DICOM MR Image Storage writer: per-kind series (magnitude, phase, g-factor) from an
 * r5_image_set, each instance one 2D image with its Image Plane geometry (dicom_plane.c),
 * encoded as Part 10 explicit VR little endian (dicom_enc.c). Conventions in dicom.h.
 * IOD: PS3.3 A.4 (MR Image), modules C.7.1.1, C.7.2.1, C.7.3.1, C.7.4.1, C.7.5.1, C.7.6.1,
 * C.7.6.2, C.7.6.3, C.8.3.1, C.11.2, C.12.1. */
#include "dicom.h"

#include <complex.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../core/log.h"
#include "dicom_enc.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>

#ifndef R5_VERSION
#define R5_VERSION "0"
#endif

#define R5_PI 3.14159265358979323846
#define MR_IMAGE_STORAGE "1.2.840.10008.5.1.4.1.1.4"
#define T(g, e) R5_DCM_TAG(0x##g, 0x##e)

struct r5_dicom_writer {
	const r5_image_set *set;
	long n_images; /* 2D images per kind: product of dims 2..15 */
	char study_uid[65], frame_uid[65], series_uid[R5_DICOM_N_KINDS][65];
	char (*instance_uid)[65]; /* [kind * n_images + index] */
	double scale[R5_DICOM_N_KINDS], window_center[R5_DICOM_N_KINDS], window_width[R5_DICOM_N_KINDS];
	int series_number;
	char patient_name[324], patient_id[65], birth_date[9], sex[2];
	char accession[17], study_description[65], referring[324], series_description[65];
	char study_date[9], study_time[17], series_date[9], series_time[17];
	char now_date[9], now_time[17];
	int deidentify;
	unsigned char key[32];
};

const char *r5_dicom_kind_name(r5_dicom_kind kind)
{
	static const char *const names[] = {"magnitude", "phase", "gfactor"};
	return (unsigned)kind < R5_DICOM_N_KINDS ? names[kind] : "unknown";
}

void r5_dicom_instance_path(r5_dicom_kind kind, long index, char *path, size_t size)
{
	snprintf(path, size, "%s/IM_%05ld.dcm", r5_dicom_kind_name(kind), index + 1);
}

/* --- text clean-up: values from headers and clients are untrusted --- */

/* Copies at most max bytes (not splitting a UTF-8 character), control characters and (unless
 * keep_backslash) '\\' become spaces, trailing spaces dropped. */
static void clean_text(char *dst, size_t dst_size, const char *src, size_t max)
{
	size_t n = 0;
	if (max >= dst_size)
		max = dst_size - 1;
	for (; src && src[n] && n < max; n++)
		dst[n] = ((unsigned char)src[n] < 0x20 || src[n] == '\\' || src[n] == 0x7F) ? ' ' : src[n];
	/* cut before a UTF-8 continuation byte, never inside a character */
	while (src && n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
		n--;
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = 0;
}

static const char *pick(const char *request, const char *header)
{
	return request && request[0] ? request : header;
}

/* YYYY-MM-DD or YYYYMMDD -> YYYYMMDD; anything else -> "". */
static void clean_date(char dst[9], const char *src)
{
	int n = 0;
	dst[0] = 0;
	for (const char *p = src ? src : ""; *p && n < 9; p++)
		if (isdigit((unsigned char)*p))
			dst[n++] = *p;
		else if (*p != '-' && *p != '.')
			n = 9; /* not a date */
	dst[n == 8 ? 8 : 0] = 0;
}

/* HH:MM:SS[.frac] or HHMMSS[.frac] -> HHMMSS[.frac]; anything else -> "". */
static void clean_time(char dst[17], const char *src)
{
	int n = 0, dot = 0;
	for (const char *p = src ? src : ""; *p && n < 16; p++) {
		if (isdigit((unsigned char)*p) || (*p == '.' && !dot && n == 6))
			dst[n++] = *p, dot |= *p == '.';
		else if (*p != ':')
			break;
	}
	if (n > 0 && dst[n - 1] == '.')
		n--;
	dst[n >= 6 ? n : 0] = 0;
}

static void clean_sex(char dst[2], const char *src)
{
	char c = src ? (char)toupper((unsigned char)src[0]) : 0;
	dst[0] = (c == 'M' || c == 'F' || c == 'O') ? c : 0;
	dst[1] = 0;
}

static const char *patient_position(const char *header_value)
{
	static const char *const valid[] = {"HFP", "HFS", "HFDR", "HFDL", "FFDR", "FFDL", "FFP", "FFS",
					    "LFP", "LFS", "RFP", "RFS", "AFDR", "AFDL", "PFDR", "PFDL"};
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
		if (header_value && !strcmp(header_value, valid[i]))
			return valid[i];
	return "";
}

/* ScanningSequence (0018,0020) from the header's sequence type; research mode when unknown. */
static void scanning_sequence(const r5_header *h, char out[32])
{
	char lower[64];
	size_t n = 0;
	for (; h->sequence_type[n] && n < sizeof lower - 1; n++)
		lower[n] = (char)tolower((unsigned char)h->sequence_type[n]);
	lower[n] = 0;
	const char *base = "RM";
	if (strstr(lower, "epi") || strstr(lower, "echoplanar"))
		base = "EP";
	else if (strstr(lower, "spin") || strstr(lower, "tse") || strstr(lower, "fse"))
		base = "SE";
	else if (strstr(lower, "gradient") || strstr(lower, "gre") || strstr(lower, "flash") || strstr(lower, "ssfp") ||
		 strstr(lower, "fisp"))
		base = "GR";
	int inversion = h->ti_ms > 0 || strstr(lower, "inversion") != NULL;
	if (inversion)
		snprintf(out, 32, strcmp(base, "RM") ? "IR\\%s" : "IR", base);
	else
		snprintf(out, 32, "%s", base);
}

/* --- per-kind pixel scaling --- */

static int kind_available(const r5_dicom_writer *w, r5_dicom_kind kind)
{
	return kind == R5_DICOM_MAGNITUDE || kind == R5_DICOM_PHASE || (kind == R5_DICOM_GFACTOR && w->set->gfactor);
}

static uint16_t stored_value(const r5_dicom_writer *w, r5_dicom_kind kind, float complex z)
{
	double v;
	if (kind == R5_DICOM_MAGNITUDE)
		v = cabsf(z) * w->scale[kind];
	else if (kind == R5_DICOM_PHASE)
		v = (cargf(z) + R5_PI) / (2.0 * R5_PI) * 4095.0;
	else
		v = crealf(z) * w->scale[kind];
	if (!(v > 0))
		return 0;
	return v >= 65535.0 ? 65535 : (uint16_t)lround(v);
}

static const r5_array *kind_array(const r5_dicom_writer *w, r5_dicom_kind kind)
{
	return kind == R5_DICOM_GFACTOR ? w->set->gfactor : w->set->images;
}

/* Element offset of voxel (0, 0) of 2D image `index` (index over dims 2..15, z fastest). */
static long image_offset(const r5_array *a, long index, long pos[R5_DIMS])
{
	long offset = 0;
	pos[0] = pos[1] = 0;
	for (int d = 2; d < R5_DIMS; d++) {
		pos[d] = index % a->dims[d];
		index /= a->dims[d];
		offset += pos[d] * a->strides[d];
	}
	return offset;
}

/* Scale (magnitude: series maximum -> 32767) and window from the 1st/99.5th percentiles. */
static r5_status series_statistics(r5_dicom_writer *w, r5_dicom_kind kind)
{
	const r5_array *a = kind_array(w, kind);
	long nx = a->dims[0], ny = a->dims[1], pos[R5_DIMS];
	w->scale[kind] = kind == R5_DICOM_GFACTOR ? 1000.0 : 1.0;
	if (kind == R5_DICOM_MAGNITUDE) {
		double max = 0;
		for (long m = 0; m < w->n_images; m++) {
			const float complex *image = a->data + image_offset(a, m, pos);
			for (long j = 0; j < ny; j++)
				for (long i = 0; i < nx; i++) {
					double v = cabsf(image[i * a->strides[0] + j * a->strides[1]]);
					max = v > max ? v : max;
				}
		}
		w->scale[kind] = max > 0 && isfinite(max) ? 32767.0 / max : 1.0;
	}
	long *histogram = calloc(65536, sizeof *histogram);
	if (!histogram)
		return r5_set_error(R5_ENOMEM, "DICOM window: histogram");
	for (long m = 0; m < w->n_images; m++) {
		const float complex *image = a->data + image_offset(a, m, pos);
		for (long j = 0; j < ny; j++)
			for (long i = 0; i < nx; i++)
				histogram[stored_value(w, kind, image[i * a->strides[0] + j * a->strides[1]])]++;
	}
	double total = (double)nx * (double)ny * (double)w->n_images, seen = 0;
	long low = -1, high = 0;
	for (long v = 0; v < 65536; v++) {
		seen += (double)histogram[v];
		if (low < 0 && seen >= 0.01 * total)
			low = v;
		if (seen >= 0.995 * total) {
			high = v;
			break;
		}
	}
	free(histogram);
	if (low < 0)
		low = 0;
	if (kind == R5_DICOM_PHASE)
		low = 0, high = 4095;
	w->window_width[kind] = high - low >= 1 ? (double)(high - low + 1) : 2.0;
	w->window_center[kind] = 0.5 * (double)(low + high) + 0.5;
	return R5_OK;
}

/* --- writer --- */

static r5_status check_set(const r5_image_set *set)
{
	if (!set || !set->images)
		return r5_set_error(R5_EINVAL, "DICOM: image set has no images");
	const r5_array *a = set->images;
	if (a->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "DICOM: images must be on the host");
	if (a->dims[0] < 1 || a->dims[1] < 1 || a->dims[0] > 65535 || a->dims[1] > 65535)
		return r5_set_error(R5_ERANGE, "DICOM: image matrix %ld x %ld does not fit Rows/Columns", a->dims[1],
				    a->dims[0]);
	if (set->gfactor && (set->gfactor->where != R5_HOST || !r5_dims_equal(set->gfactor->dims, a->dims)))
		return r5_set_error(R5_EINVAL, "DICOM: g-factor map must be on the host with the images' dimensions");
	if (a->dims[R5_DIM_SLICE] > 1 && set->n_slices < a->dims[R5_DIM_SLICE])
		r5_warn("DICOM: %ld slices of images, geometry for %ld", a->dims[R5_DIM_SLICE], set->n_slices);
	return R5_OK;
}

static void fill_identity(r5_dicom_writer *w, const r5_dicom_request *req)
{
	static const r5_dicom_request none = {0};
	const r5_dicom_request *r = req ? req : &none;
	const r5_header *h = &w->set->header;
	clean_text(w->patient_name, sizeof w->patient_name, pick(r->patient_name, h->patient_name), 64);
	clean_text(w->patient_id, sizeof w->patient_id, pick(r->patient_id, h->patient_id), 64);
	clean_date(w->birth_date, pick(r->patient_birth_date, h->patient_birthdate));
	clean_sex(w->sex, pick(r->patient_sex, h->patient_sex));
	clean_text(w->accession, sizeof w->accession, pick(r->accession_number, h->accession_number), 16);
	clean_text(w->study_description, sizeof w->study_description, pick(r->study_description, h->study_description),
		   64);
	clean_text(w->referring, sizeof w->referring, pick(r->referring_physician, h->referring_physician), 64);
	const char *series = pick(r->series_description, h->series_description[0] ? h->series_description : h->protocol_name);
	clean_text(w->series_description, sizeof w->series_description, series, 48);
	clean_date(w->study_date, h->study_date);
	clean_time(w->study_time, h->study_time);
	clean_date(w->series_date, h->series_date);
	clean_time(w->series_time, h->series_time);
	time_t now = time(NULL);
	struct tm local;
	localtime_r(&now, &local);
	strftime(w->now_date, sizeof w->now_date, "%Y%m%d", &local);
	strftime(w->now_time, sizeof w->now_time, "%H%M%S", &local);
	/* a study needs a date for PACS browsing: the series', else the reconstruction's */
	if (!w->study_date[0])
		memcpy(w->study_date, w->series_date[0] ? w->series_date : w->now_date, sizeof w->study_date);
	if (!w->study_time[0])
		memcpy(w->study_time, w->series_time[0] ? w->series_time : w->now_time, sizeof w->study_time);
	w->series_number = r->series_number > 0 ? r->series_number : (h->series_number > 0 ? h->series_number : 1);
	w->deidentify = r->deidentify != 0;
	if (w->deidentify) { /* Z/X of the profile: nothing of the patient, study or dates is kept */
		w->patient_name[0] = w->patient_id[0] = w->birth_date[0] = w->sex[0] = w->accession[0] = 0;
		w->study_description[0] = w->referring[0] = w->series_description[0] = 0;
		w->study_date[0] = w->study_time[0] = w->series_date[0] = w->series_time[0] = 0;
		w->now_date[0] = w->now_time[0] = 0;
	}
}

/* The key of the UID hash: the request's, else one random key per process. */
static r5_status deid_key(r5_dicom_writer *w, const char *key)
{
	static unsigned char process_key[32];
	static int have_key;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	if (key && key[0]) {
		SHA256((const unsigned char *)key, strlen(key), w->key);
		return R5_OK;
	}
	pthread_mutex_lock(&lock);
	int ok = have_key || RAND_bytes(process_key, sizeof process_key) == 1;
	have_key = ok;
	if (ok)
		memcpy(w->key, process_key, sizeof w->key);
	pthread_mutex_unlock(&lock);
	return ok ? R5_OK : r5_set_error(R5_EIO, "DICOM de-identification: no random key");
}

/* U of the profile: 2.25.<128 bits of HMAC-SHA-256(key, original)>, the same for the same
 * original (a study keeps one UID over its jobs), else a fresh random UID. */
static r5_status deid_uid(const r5_dicom_writer *w, const char *original, char uid[65])
{
	if (!r5_dicom_uid_valid(original))
		return r5_dicom_uid_generate(uid);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!HMAC(EVP_sha256(), w->key, sizeof w->key, (const unsigned char *)original, strlen(original), mac, &n) ||
	    n < 16)
		return r5_set_error(R5_EIO, "DICOM de-identification: HMAC failed");
	/* the 128-bit big-endian number mac[0..15] in decimal: repeated division by 10 */
	unsigned char v[16];
	memcpy(v, mac, sizeof v);
	char digits[48];
	int k = (int)sizeof digits - 1, nonzero;
	digits[k] = 0;
	do {
		unsigned rem = 0;
		nonzero = 0;
		for (int i = 0; i < 16; i++) {
			unsigned cur = rem * 256u + v[i];
			v[i] = (unsigned char)(cur / 10u);
			rem = cur % 10u;
			nonzero |= v[i];
		}
		digits[--k] = (char)('0' + (int)rem);
	} while (nonzero);
	snprintf(uid, 65, "2.25.%s", digits + k);
	return R5_OK;
}

static r5_status fill_uids(r5_dicom_writer *w, const r5_dicom_request *req)
{
	const r5_header *h = &w->set->header;
	const char *study = pick(req ? req->study_uid : NULL, h->study_uid);
	if (w->deidentify) {
		R5_TRY(deid_key(w, req ? req->deidentify_key : NULL));
		R5_TRY(deid_uid(w, study, w->study_uid));
		R5_TRY(deid_uid(w, h->frame_of_reference_uid, w->frame_uid));
		for (int k = 0; k < R5_DICOM_N_KINDS; k++) {
			char derived[160];
			snprintf(derived, sizeof derived, "%s.%d", h->series_uid, k + 1);
			R5_TRY(deid_uid(w, r5_dicom_uid_valid(h->series_uid) ? derived : "", w->series_uid[k]));
		}
		for (long i = 0; i < R5_DICOM_N_KINDS * w->n_images; i++)
			R5_TRY(r5_dicom_uid_generate(w->instance_uid[i]));
		return R5_OK;
	}
	if (r5_dicom_uid_valid(study))
		snprintf(w->study_uid, sizeof w->study_uid, "%.64s", study);
	else
		R5_TRY(r5_dicom_uid_generate(w->study_uid));
	if (r5_dicom_uid_valid(h->frame_of_reference_uid))
		snprintf(w->frame_uid, sizeof w->frame_uid, "%.64s", h->frame_of_reference_uid);
	else
		R5_TRY(r5_dicom_uid_generate(w->frame_uid));
	for (int k = 0; k < R5_DICOM_N_KINDS; k++) {
		char derived[160];
		snprintf(derived, sizeof derived, "%s.%d", h->series_uid, k + 1);
		if (r5_dicom_uid_valid(h->series_uid) && r5_dicom_uid_valid(derived))
			snprintf(w->series_uid[k], sizeof w->series_uid[k], "%.64s", derived);
		else
			R5_TRY(r5_dicom_uid_generate(w->series_uid[k]));
	}
	for (long i = 0; i < R5_DICOM_N_KINDS * w->n_images; i++)
		R5_TRY(r5_dicom_uid_generate(w->instance_uid[i]));
	return R5_OK;
}

r5_status r5_dicom_writer_create(const r5_image_set *set, const r5_dicom_request *req, r5_dicom_writer **out)
{
	*out = NULL;
	R5_TRY(check_set(set));
	r5_dicom_writer *w = calloc(1, sizeof *w);
	if (!w)
		return r5_set_error(R5_ENOMEM, "DICOM writer");
	w->set = set;
	w->n_images = 1;
	for (int d = 2; d < R5_DIMS; d++)
		w->n_images *= set->images->dims[d];
	w->instance_uid = calloc((size_t)(R5_DICOM_N_KINDS * w->n_images), sizeof *w->instance_uid);
	r5_status s = w->instance_uid ? R5_OK : r5_set_error(R5_ENOMEM, "DICOM writer: %ld UIDs", w->n_images);
	if (s == R5_OK) {
		fill_identity(w, req);
		s = fill_uids(w, req);
	}
	for (int k = 0; k < R5_DICOM_N_KINDS && s == R5_OK; k++)
		if (kind_available(w, (r5_dicom_kind)k))
			s = series_statistics(w, (r5_dicom_kind)k);
	if (s != R5_OK) {
		r5_dicom_writer_destroy(w);
		return r5_error_context(s, "DICOM writer");
	}
	*out = w;
	return R5_OK;
}

void r5_dicom_writer_destroy(r5_dicom_writer *w)
{
	if (!w)
		return;
	free(w->instance_uid);
	free(w);
}

long r5_dicom_writer_count(const r5_dicom_writer *w, r5_dicom_kind kind)
{
	return w && (unsigned)kind < R5_DICOM_N_KINDS && kind_available(w, kind) ? w->n_images : 0;
}

const char *r5_dicom_writer_study_uid(const r5_dicom_writer *w)
{
	return w->study_uid;
}

const char *r5_dicom_writer_series_uid(const r5_dicom_writer *w, r5_dicom_kind kind)
{
	return (unsigned)kind < R5_DICOM_N_KINDS ? w->series_uid[kind] : "";
}

/* Patient, General Study, General Series, Frame of Reference, General Equipment, SOP Common. */
static void put_patient_study_series(r5_dcm_dataset *ds, const r5_dicom_writer *w, r5_dicom_kind kind, long index)
{
	const r5_header *h = &w->set->header;
	r5_dcm_put_text(ds, T(0008, 0005), "CS", "ISO_IR 192");
	const int deid = w->deidentify;
	if (!deid) {
		r5_dcm_put_text(ds, T(0008, 0012), "DA", w->now_date);
		r5_dcm_put_text(ds, T(0008, 0013), "TM", w->now_time);
		r5_dcm_put_text(ds, T(0008, 0021), "DA", w->series_date);
		} else {
		static const r5_dcm_dataset empty;
		r5_dcm_dataset code = empty;
		r5_dcm_put_text(&code, T(0008, 0100), "SH", "113100");
		r5_dcm_put_text(&code, T(0008, 0102), "SH", "DCM");
		r5_dcm_put_text(&code, T(0008, 0104), "LO", "Basic Application Confidentiality Profile");
		r5_dcm_put_text(ds, T(0012, 0062), "CS", "YES");
		r5_dcm_put_text(ds, T(0012, 0063), "LO", "recon5t: PS3.15 E.1-1 Basic Profile");
		r5_dcm_put_sequence(ds, T(0012, 0064), &code, 1);
		r5_dcm_clear(&code);
		r5_dcm_put_text(ds, T(0028, 0303), "CS", "REMOVED");
	}
	r5_dcm_put_text(ds, T(0008, 0016), "UI", MR_IMAGE_STORAGE);
	r5_dcm_put_text(ds, T(0008, 0018), "UI", w->instance_uid[kind * w->n_images + index]);
	r5_dcm_put_text(ds, T(0008, 0020), "DA", w->study_date);
	r5_dcm_put_text(ds, T(0008, 0023), "DA", w->now_date);
	r5_dcm_put_text(ds, T(0008, 0030), "TM", w->study_time);
	r5_dcm_put_text(ds, T(0008, 0033), "TM", w->now_time);
	r5_dcm_put_text(ds, T(0008, 0050), "SH", w->accession);
	r5_dcm_put_text(ds, T(0008, 0060), "CS", "MR");
	char text[128];
	clean_text(text, sizeof text, h->vendor, 64);
	r5_dcm_put_text(ds, T(0008, 0070), "LO", text);
	clean_text(text, sizeof text, h->institution, 64);
	if (text[0] && !deid)
		r5_dcm_put_text(ds, T(0008, 0080), "LO", text);
	r5_dcm_put_text(ds, T(0008, 0090), "PN", w->referring);
	clean_text(text, sizeof text, h->station, 16);
	if (text[0] && !deid)
		r5_dcm_put_text(ds, T(0008, 1010), "SH", text);
	if (w->study_description[0])
		r5_dcm_put_text(ds, T(0008, 1030), "LO", w->study_description);
	snprintf(text, sizeof text, "%s%s%s", w->series_description, w->series_description[0] ? " " : "",
		 r5_dicom_kind_name(kind));
	if (!deid)
		r5_dcm_put_text(ds, T(0008, 103E), "LO", text);
	clean_text(text, sizeof text, h->model, 64);
	if (text[0])
		r5_dcm_put_text(ds, T(0008, 1090), "LO", text);
	r5_dcm_put_text(ds, T(0010, 0010), "PN", w->patient_name);
	r5_dcm_put_text(ds, T(0010, 0020), "LO", w->patient_id);
	r5_dcm_put_text(ds, T(0010, 0030), "DA", w->birth_date);
	r5_dcm_put_text(ds, T(0010, 0040), "CS", w->sex);
	if (h->patient_weight_kg > 0 && !deid) {
		double weight = h->patient_weight_kg;
		r5_dcm_put_ds(ds, T(0010, 1030), &weight, 1);
	}
	clean_text(text, sizeof text, h->device_serial, 64);
	if (text[0] && !deid)
		r5_dcm_put_text(ds, T(0018, 1000), "LO", text);
	r5_dcm_put_text(ds, T(0018, 1020), "LO", "recon5t " R5_VERSION);
	clean_text(text, sizeof text, h->protocol_name, 64);
	if (text[0] && !deid)
		r5_dcm_put_text(ds, T(0018, 1030), "LO", text);
	r5_dcm_put_text(ds, T(0018, 5100), "CS", patient_position(h->patient_position));
	r5_dcm_put_text(ds, T(0020, 000D), "UI", w->study_uid);
	r5_dcm_put_text(ds, T(0020, 000E), "UI", w->series_uid[kind]);
	clean_text(text, sizeof text, deid ? "" : h->study_id, 16);
	r5_dcm_put_text(ds, T(0020, 0010), "SH", text);
	r5_dcm_put_is(ds, T(0020, 0011), w->series_number + 1000 * (long)kind);
	r5_dcm_put_text(ds, T(0020, 0052), "UI", w->frame_uid);
	r5_dcm_put_text(ds, T(0020, 0060), "CS", ""); /* Laterality 2C: body part unknown */
	r5_dcm_put_text(ds, T(0020, 1040), "LO", "");
}

/* ImageType and the sentence saying how the pixels were made (DerivationDescription, ST). */
static void put_derivation(r5_dcm_dataset *ds, const r5_dicom_writer *w, r5_dicom_kind kind)
{
	static const char *const image_type[] = {"DERIVED\\PRIMARY\\OTHER\\M", "DERIVED\\PRIMARY\\OTHER\\P",
						 "DERIVED\\SECONDARY\\OTHER\\GFACTOR"};
	r5_dcm_put_text(ds, T(0008, 0008), "CS", image_type[kind]);
	char pixels[160], text[1100], clean[1025];
	if (kind == R5_DICOM_MAGNITUDE)
		snprintf(pixels, sizeof pixels, "stored = |image| x %.6g", w->scale[kind]);
	else if (kind == R5_DICOM_PHASE)
		snprintf(pixels, sizeof pixels, "stored = (phase rad + pi) / (2 pi) x 4095");
	else
		snprintf(pixels, sizeof pixels, "stored = g-factor x 1000");
	snprintf(text, sizeof text, "recon5t %s pipeline %s on %s; %s; %s", R5_VERSION,
		 w->set->pipeline[0] ? w->set->pipeline : "unknown", w->set->backend[0] ? w->set->backend : "cpu", pixels,
		 w->set->parameters);
	clean_text(clean, sizeof clean, text, 1024);
	if (!w->deidentify)
		r5_dcm_put_text(ds, T(0008, 2111), "ST", clean);
}

/* MR Image module (C.8.3.1) acquisition attributes from the header. */
static void put_mr(r5_dcm_dataset *ds, const r5_dicom_writer *w, const long pos[R5_DIMS])
{
	const r5_header *h = &w->set->header;
	char sequence[32], text[80];
	scanning_sequence(h, sequence);
	r5_dcm_put_text(ds, T(0018, 0020), "CS", sequence);
	r5_dcm_put_text(ds, T(0018, 0021), "CS", "NONE");
	r5_dcm_put_text(ds, T(0018, 0022), "CS", "");
	r5_dcm_put_text(ds, T(0018, 0023), "CS", w->set->images->dims[2] > 1 ? "3D" : "2D");
	clean_text(text, sizeof text, h->sequence_name, 16);
	if (text[0])
		r5_dcm_put_text(ds, T(0018, 0024), "SH", text);
	double values[1];
	if (h->tr_ms > 0)
		r5_dcm_put_ds(ds, T(0018, 0080), (values[0] = h->tr_ms, values), 1);
	else
		r5_dcm_put_text(ds, T(0018, 0080), "DS", "");
	if (h->te_ms > 0)
		r5_dcm_put_ds(ds, T(0018, 0081), (values[0] = h->te_ms, values), 1);
	else
		r5_dcm_put_text(ds, T(0018, 0081), "DS", "");
	if (strstr(sequence, "IR"))
		r5_dcm_put_ds(ds, T(0018, 0082), (values[0] = h->ti_ms, values), 1);
	if (h->larmor_hz > 0)
		r5_dcm_put_ds(ds, T(0018, 0084), (values[0] = (double)h->larmor_hz / 1e6, values), 1);
	r5_dcm_put_text(ds, T(0018, 0085), "SH", "1H");
	r5_dcm_put_is(ds, T(0018, 0086), pos[R5_DIM_TE] + 1);
	if (h->field_T > 0)
		r5_dcm_put_ds(ds, T(0018, 0087), (values[0] = h->field_T, values), 1);
	r5_dcm_put_text(ds, T(0018, 0091), "IS", "");
	if (h->flip_deg > 0)
		r5_dcm_put_ds(ds, T(0018, 1314), (values[0] = h->flip_deg, values), 1);
	r5_dcm_put_text(ds, T(0018, 1312), "CS", "COL");
}

static void put_plane_pixels(r5_dcm_dataset *ds, const r5_dicom_writer *w, r5_dicom_kind kind,
			     const r5_dicom_plane *plane, const uint16_t *pixels)
{
	r5_dcm_put_ds(ds, T(0018, 0050), &plane->thickness_mm, 1);
	r5_dcm_put_ds(ds, T(0018, 0088), &plane->spacing_between_mm, 1);
	r5_dcm_put_ds(ds, T(0020, 0032), plane->position, 3);
	r5_dcm_put_ds(ds, T(0020, 0037), plane->orientation, 6);
	r5_dcm_put_ds(ds, T(0020, 1041), &plane->slice_location_mm, 1);
	r5_dcm_put_us(ds, T(0028, 0002), 1);
	r5_dcm_put_text(ds, T(0028, 0004), "CS", "MONOCHROME2");
	r5_dcm_put_us(ds, T(0028, 0010), (uint16_t)plane->rows);
	r5_dcm_put_us(ds, T(0028, 0011), (uint16_t)plane->columns);
	r5_dcm_put_ds(ds, T(0028, 0030), plane->spacing, 2);
	r5_dcm_put_us(ds, T(0028, 0100), 16);
	r5_dcm_put_us(ds, T(0028, 0101), 16);
	r5_dcm_put_us(ds, T(0028, 0102), 15);
	r5_dcm_put_us(ds, T(0028, 0103), 0);
	r5_dcm_put_ds(ds, T(0028, 1050), &w->window_center[kind], 1);
	r5_dcm_put_ds(ds, T(0028, 1051), &w->window_width[kind], 1);
	r5_dcm_put_text(ds, T(0028, 1055), "LO", "PERCENTILE 1 TO 99.5");
	unsigned char *bytes = (unsigned char *)calloc((size_t)(plane->rows * plane->columns), 2);
	if (!bytes) {
		ds->error = r5_set_error(R5_ENOMEM, "DICOM pixel data");
		return;
	}
	for (long i = 0; i < plane->rows * plane->columns; i++) {
		bytes[2 * i] = (unsigned char)(pixels[i] & 0xFF);
		bytes[2 * i + 1] = (unsigned char)(pixels[i] >> 8);
	}
	r5_dcm_put_bytes(ds, T(7FE0, 0010), "OW", bytes, (size_t)(plane->rows * plane->columns) * 2);
	free(bytes);
}

r5_status r5_dicom_writer_encode(r5_dicom_writer *w, r5_dicom_kind kind, long index, unsigned char **bytes,
				 size_t *length)
{
	*bytes = NULL;
	*length = 0;
	if (index < 0 || index >= r5_dicom_writer_count(w, kind))
		return r5_set_error(R5_EINVAL, "DICOM %s instance %ld: out of range (%ld)", r5_dicom_kind_name(kind), index,
				    r5_dicom_writer_count(w, kind));
	const r5_array *a = kind_array(w, kind);
	long pos[R5_DIMS];
	const float complex *image = a->data + image_offset(a, index, pos);
	long slice = pos[R5_DIM_SLICE] < w->set->n_slices ? pos[R5_DIM_SLICE] : w->set->n_slices - 1;
	r5_dicom_plane plane;
	R5_TRY(r5_dicom_plane_of(w->set, slice, pos[R5_DIM_Z], &plane));
	uint16_t *pixels = malloc((size_t)(plane.rows * plane.columns) * sizeof *pixels);
	if (!pixels)
		return r5_set_error(R5_ENOMEM, "DICOM pixels");
	for (long j = 0; j < plane.rows; j++)
		for (long i = 0; i < plane.columns; i++)
			pixels[j * plane.columns + i] = stored_value(w, kind, image[i * a->strides[0] + j * a->strides[1]]);
	r5_dcm_dataset ds;
	r5_dcm_init(&ds);
	put_patient_study_series(&ds, w, kind, index);
	put_derivation(&ds, w, kind);
	put_mr(&ds, w, pos);
	r5_dcm_put_is(&ds, T(0020, 0012), pos[R5_DIM_TIME] + 1);
	r5_dcm_put_is(&ds, T(0020, 0013), index + 1);
	r5_dcm_put_text(&ds, T(0028, 0301), "CS", "NO");
	put_plane_pixels(&ds, w, kind, &plane, pixels);
	free(pixels);
	r5_status s = r5_dcm_encode(&ds, MR_IMAGE_STORAGE, w->instance_uid[kind * w->n_images + index], bytes, length);
	r5_dcm_clear(&ds);
	if (s != R5_OK)
		return r5_error_context(s, "DICOM %s instance %ld", r5_dicom_kind_name(kind), index);
	return R5_OK;
}

static r5_status write_kind(r5_dicom_writer *w, r5_dicom_kind kind, const char *dir, long *n_written)
{
	char path[4096], name[64];
	snprintf(path, sizeof path, "%s/%s", dir, r5_dicom_kind_name(kind));
	R5_TRY(r5_dcm_make_directory(path));
	for (long i = 0; i < r5_dicom_writer_count(w, kind); i++) {
		unsigned char *bytes;
		size_t length;
		R5_TRY(r5_dicom_writer_encode(w, kind, i, &bytes, &length));
		r5_dicom_instance_path(kind, i, name, sizeof name);
		snprintf(path, sizeof path, "%s/%s", dir, name);
		r5_status s = r5_dcm_write_file(path, bytes, length);
		free(bytes);
		R5_TRY(s);
		(*n_written)++;
	}
	return R5_OK;
}

r5_status r5_dicom_write_set(const r5_image_set *set, const r5_dicom_request *req, unsigned kinds_mask,
			     const char *dir, long *n_written)
{
	long written = 0;
	if (n_written)
		*n_written = 0;
	if (!dir)
		return r5_set_error(R5_EINVAL, "DICOM: no output directory");
	r5_dicom_writer *w;
	R5_TRY(r5_dicom_writer_create(set, req, &w));
	r5_status s = r5_dcm_make_directory(dir);
	for (int k = 0; k < R5_DICOM_N_KINDS && s == R5_OK; k++)
		if ((kinds_mask & R5_DICOM_KIND_FLAG(k)) && r5_dicom_writer_count(w, (r5_dicom_kind)k) > 0)
			s = write_kind(w, (r5_dicom_kind)k, dir, &written);
	r5_dicom_writer_destroy(w);
	if (n_written)
		*n_written = written;
	return s;
}
