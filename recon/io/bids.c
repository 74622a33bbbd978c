/* BIDS sidecars and dataset layout (bids.h), JSON written by hand (flat objects of strings,
 * numbers and one array), SHA-256 with OpenSSL's EVP. */
#include "bids.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dicom.h"
#include "dicom_enc.h"
#include "nifti.h"

typedef struct json_text {
	char *text;
	size_t length, capacity;
	int failed, n_keys;
} json_text;

static void add(json_text *j, const char *fmt, ...)
{
	if (j->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || j->length + (size_t)n + 1 > j->capacity) {
		size_t capacity = (j->capacity + (size_t)(n > 0 ? n : 0) + 1) * 2;
		char *grown = realloc(j->text, capacity);
		if (!grown || n < 0) {
			j->failed = 1;
			return;
		}
		j->text = grown;
		j->capacity = capacity;
	}
	va_start(ap, fmt);
	vsnprintf(j->text + j->length, j->capacity - j->length, fmt, ap);
	va_end(ap);
	j->length += (size_t)n;
}

static void key(json_text *j, const char *name)
{
	add(j, "%s\n  \"%s\": ", j->n_keys++ ? "," : "{", name);
}

static void string_value(json_text *j, const char *name, const char *value)
{
	if (!value || !value[0])
		return;
	key(j, name);
	add(j, "\"");
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p == '"' || *p == '\\')
			add(j, "\\%c", *p);
		else if (*p < 0x20)
			add(j, "\\u%04x", *p);
		else
			add(j, "%c", *p);
	}
	add(j, "\"");
}

static void number_value(json_text *j, const char *name, double value)
{
	key(j, name);
	add(j, "%.10g", value);
}

r5_status r5_bids_sidecar(const r5_image_set *set, const r5_bids_options *opt, char **json)
{
	*json = NULL;
	const r5_header *h = &set->header;
	r5_nifti_geometry g;
	R5_TRY(r5_nifti_geometry_of(set, &g, NULL));
	r5_dicom_plane plane;
	R5_TRY(r5_dicom_plane_of(set, 0, 0, &plane));
	json_text j = {0};
	if (h->field_T > 0)
		number_value(&j, "MagneticFieldStrength", h->field_T);
	if (h->larmor_hz > 0)
		number_value(&j, "ImagingFrequency", (double)h->larmor_hz / 1e6);
	string_value(&j, "Manufacturer", h->vendor);
	string_value(&j, "ManufacturersModelName", h->model);
	if (!opt || !opt->deidentified)
		string_value(&j, "InstitutionName", h->institution);
	if (h->tr_ms > 0)
		number_value(&j, "RepetitionTime", h->tr_ms / 1000.0);
	if (h->te_ms > 0)
		number_value(&j, "EchoTime", h->te_ms / 1000.0);
	if (h->ti_ms > 0)
		number_value(&j, "InversionTime", h->ti_ms / 1000.0);
	if (h->flip_deg > 0)
		number_value(&j, "FlipAngle", h->flip_deg);
	string_value(&j, "MRAcquisitionType", g.is_3d ? "3D" : "2D");
	string_value(&j, "SequenceName", h->sequence_name);
	number_value(&j, "SliceThickness", plane.thickness_mm);
	number_value(&j, "SpacingBetweenSlices", g.pixdim[2]);
	key(&j, "AcquisitionMatrix");
	add(&j, "[%ld, %ld, %ld]", h->enc_matrix[0], h->enc_matrix[1], h->enc_matrix[2] > 0 ? h->enc_matrix[2] : 1);
	if (h->enc_matrix[1] > 0)
		number_value(&j, "AcquisitionMatrixPE", (double)h->enc_matrix[1]);
	number_value(&j, "ReconMatrixPE", (double)g.dims[1]);
	key(&j, "SoftwareVersions");
	add(&j, "\"recon5t %s\"", R5_VERSION);
	string_value(&j, "ReconstructionSoftware", "recon5t");
	string_value(&j, "ReconstructionPipeline", set->pipeline);
	string_value(&j, "ReconstructionParameters", set->parameters);
	string_value(&j, "ReconstructionBackend", set->backend);
	string_value(&j, "ImageComponent", "magnitude");
	if (opt && opt->input_sha256 && opt->input_sha256[0]) {
		char hash[80];
		snprintf(hash, sizeof hash, "sha256:%s", opt->input_sha256);
		string_value(&j, "InputHash", hash);
	}
	if (opt && opt->input_stream_sha256 && opt->input_stream_sha256[0]) {
		char hash[80];
		snprintf(hash, sizeof hash, "sha256:%s", opt->input_stream_sha256);
		string_value(&j, "InputStreamHash", hash);
	}
	add(&j, "\n}\n");
	if (j.failed) {
		free(j.text);
		return r5_set_error(R5_ENOMEM, "BIDS sidecar: out of memory");
	}
	*json = j.text;
	return R5_OK;
}

struct r5_sha256 {
	EVP_MD_CTX *md;
};

r5_status r5_sha256_begin(r5_sha256 **h)
{
	*h = calloc(1, sizeof **h);
	if (!*h || !((*h)->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex((*h)->md, EVP_sha256(), NULL)) {
		r5_sha256_free(*h);
		*h = NULL;
		return r5_set_error(R5_EINTERNAL, "SHA-256: EVP init failed");
	}
	return R5_OK;
}

r5_status r5_sha256_update(r5_sha256 *h, const void *data, size_t length)
{
	return length == 0 || EVP_DigestUpdate(h->md, data, length) ? R5_OK
								    : r5_set_error(R5_EINTERNAL, "SHA-256: EVP update failed");
}

r5_status r5_sha256_end(r5_sha256 **h, char hex[65])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned length = 0;
	hex[0] = 0;
	r5_status s = EVP_DigestFinal_ex((*h)->md, digest, &length) && length == 32
			      ? R5_OK
			      : r5_set_error(R5_EINTERNAL, "SHA-256: EVP final failed");
	for (unsigned i = 0; s == R5_OK && i < length; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	r5_sha256_free(*h);
	*h = NULL;
	return s;
}

void r5_sha256_free(r5_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->md);
	free(h);
}

r5_status r5_sha256_file(const char *path, char hex[65])
{
	hex[0] = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return r5_set_error(R5_EIO, "SHA-256 of '%s': %s", path, strerror(errno));
	r5_sha256 *h = NULL;
	r5_status s = r5_sha256_begin(&h);
	unsigned char chunk[1 << 16];
	size_t n;
	while (s == R5_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		s = r5_sha256_update(h, chunk, n);
	if (s == R5_OK && ferror(f))
		s = r5_set_error(R5_EIO, "SHA-256 of '%s': read failed", path);
	if (s == R5_OK)
		s = r5_sha256_end(&h, hex);
	r5_sha256_free(h);
	fclose(f);
	return s;
}

static r5_status write_text(const char *path, const char *text)
{
	return r5_dcm_write_file(path, (const unsigned char *)text, strlen(text));
}

/* A dataset's own files are the researcher's once they exist (an edited description stays). */
static r5_status write_text_once(const char *path, const char *text)
{
	return access(path, F_OK) == 0 ? R5_OK : write_text(path, text);
}

/* participants.tsv with a row for `subject`: the rows already there are kept (other subjects,
 * columns a researcher added), the subject's row added once. */
static r5_status add_participant(const char *path, const char *subject)
{
	char row[80];
	snprintf(row, sizeof row, "sub-%s", subject);
	FILE *f = fopen(path, "rb");
	if (!f && errno != ENOENT)
		return r5_set_error(R5_EIO, "BIDS: cannot read '%s': %s", path, strerror(errno));
	if (!f) {
		char text[100];
		snprintf(text, sizeof text, "participant_id\n%s\n", row);
		return write_text(path, text);
	}
	enum { MAX_TSV = 1 << 20 };
	char *text = malloc(MAX_TSV + 2);
	size_t n = text ? fread(text, 1, MAX_TSV + 1, f) : 0;
	int failed = ferror(f);
	fclose(f);
	if (!text || failed || n > MAX_TSV) {
		free(text);
		return r5_set_error(R5_EIO, "BIDS: '%s' is unreadable or over %d bytes", path, MAX_TSV);
	}
	text[n] = '\0';
	size_t len = strlen(row);
	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (!strncmp(line, row, len) && (line[len] == '\t' || line[len] == '\n' || line[len] == '\r' || !line[len])) {
			free(text);
			return R5_OK;
		}
	if (n > 0 && text[n - 1] != '\n')
		text[n++] = '\n', text[n] = '\0';
	char *grown = realloc(text, n + len + 2);
	if (!grown) {
		free(text);
		return r5_set_error(R5_ENOMEM, "BIDS: participants.tsv");
	}
	snprintf(grown + n, len + 2, "%s\n", row);
	r5_status s = write_text(path, grown);
	free(grown);
	return s;
}

r5_status r5_nifti_write_series(const r5_image_set *set, const r5_bids_options *opt, const char *dir,
				const char *stem)
{
	char path[4096], description[80];
	R5_TRY(r5_dcm_make_directory(dir));
	snprintf(description, sizeof description, "recon5t %s %s magnitude", R5_VERSION, set->pipeline);
	if (snprintf(path, sizeof path, "%s/%s.nii.gz", dir, stem) >= (int)sizeof path)
		return r5_set_error(R5_EINVAL, "NIfTI: path '%s/%s' too long", dir, stem);
	R5_TRY(r5_nifti_write(set, description, path));
	char *json = NULL;
	R5_TRY(r5_bids_sidecar(set, opt, &json));
	snprintf(path, sizeof path, "%s/%s.json", dir, stem);
	r5_status s = write_text(path, json);
	free(json);
	return s;
}

const char *r5_bids_suffix(const r5_header *h)
{
	if (h->tr_ms >= 1500 && h->te_ms >= 60)
		return "T2w";
	if (h->tr_ms >= 1500 && h->ti_ms <= 0)
		return "PDw";
	return "T1w";
}

static int bids_label(const char *label)
{
	if (!label || !label[0] || strlen(label) > 64)
		return 0;
	for (const char *p = label; *p; p++)
		if (!isalnum((unsigned char)*p))
			return 0;
	return 1;
}

r5_status r5_bids_write_dataset(const r5_image_set *set, const char *input_sha256, const char *root,
				const char *subject, const char *session)
{
	if (!bids_label(subject))
		return r5_set_error(R5_EINVAL, "BIDS: subject label '%s' must be 1-64 letters or digits",
				    subject ? subject : "");
	if (session && !bids_label(session))
		return r5_set_error(R5_EINVAL, "BIDS: session label '%s' must be 1-64 letters or digits", session);
	char path[4096], dir[4096], stem[200], text[1024];
	R5_TRY(r5_dcm_make_directory(root));
	snprintf(text, sizeof text,
		 "{\n  \"Name\": \"recon5t reconstruction\",\n  \"BIDSVersion\": \"1.8.0\",\n  \"DatasetType\": \"raw\",\n"
		 "  \"GeneratedBy\": [\n    {\n      \"Name\": \"recon5t\",\n      \"Version\": \"%s\",\n"
		 "      \"Description\": \"MRI reconstruction from ISMRMRD raw data\"\n    }\n  ]\n}\n",
		 R5_VERSION);
	if (snprintf(path, sizeof path, "%s/dataset_description.json", root) >= (int)sizeof path)
		return r5_set_error(R5_EINVAL, "BIDS: root path too long");
	R5_TRY(write_text_once(path, text));
	snprintf(path, sizeof path, "%s/README", root);
	R5_TRY(write_text_once(path, "Images reconstructed by recon5t from ISMRMRD raw data. Each image's JSON sidecar\n"
				"records the reconstruction pipeline, its parameters and the SHA-256 of its input.\n"));
	snprintf(path, sizeof path, "%s/participants.tsv", root);
	R5_TRY(add_participant(path, subject));
	if (session) {
		snprintf(dir, sizeof dir, "%s/sub-%s/ses-%s/anat", root, subject, session);
		snprintf(stem, sizeof stem, "sub-%s_ses-%s_%s", subject, session, r5_bids_suffix(&set->header));
	} else {
		snprintf(dir, sizeof dir, "%s/sub-%s/anat", root, subject);
		snprintf(stem, sizeof stem, "sub-%s_%s", subject, r5_bids_suffix(&set->header));
	}
	r5_bids_options opt = {input_sha256, 1, NULL};
	return r5_nifti_write_series(set, &opt, dir, stem);
}
