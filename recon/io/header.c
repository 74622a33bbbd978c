/* ISMRMRD XML header -> r5_header with libxml2 XPath (libismrmrd's own parser is C++ only).
 *
 * Documents in the ISMRMRD namespace (http://www.ismrm.org/ISMRMRD) are read through a
 * registered prefix; documents without a namespace are read with plain paths. Required: the
 * root <ismrmrdHeader>, one <encoding> with a <trajectory>. Optional elements that are absent
 * leave 0 / "" (matrix sizes, FOV and receiverChannels 0 mean "take from the data"); present
 * but malformed values are errors naming the element. Values of subjectInformation are never
 * echoed in messages (patient data). Strings longer than their field are truncated. */
#include "header.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#define R5_ISMRMRD_NS "http://www.ismrm.org/ISMRMRD"

typedef struct xml_reader {
	xmlXPathContextPtr xpath;
	const char *prefix; /* "i:" with the namespace, "" without */
} xml_reader;

/* "encoding/encodedSpace/matrixSize/x" -> "/i:ismrmrdHeader/i:encoding[1]/i:encodedSpace[1]/..." */
static void make_xpath(const xml_reader *r, const char *path, char *out, size_t size)
{
	size_t used = (size_t)snprintf(out, size, "/%sismrmrdHeader", r->prefix);
	const char *p = path;
	while (*p && used < size) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		used += (size_t)snprintf(out + used, size - used, "/%s%.*s[1]", r->prefix, (int)len, p);
		p += len;
		if (*p == '/')
			p++;
	}
}

/* Text of the first node at path, trimmed; NULL when absent. Caller frees with xmlFree. */
static xmlChar *node_text(const xml_reader *r, const char *path)
{
	char xpath[512];
	make_xpath(r, path, xpath, sizeof xpath);
	xmlXPathObjectPtr obj = xmlXPathEvalExpression((const xmlChar *)xpath, r->xpath);
	xmlChar *text = NULL;
	if (obj && obj->nodesetval && obj->nodesetval->nodeNr > 0)
		text = xmlNodeGetContent(obj->nodesetval->nodeTab[0]);
	xmlXPathFreeObject(obj);
	if (!text)
		return NULL;
	/* trim surrounding white space in place */
	char *s = (char *)text, *start = s;
	while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
		start++;
	size_t len = strlen(start);
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' || start[len - 1] == '\n' ||
			   start[len - 1] == '\r'))
		len--;
	memmove(s, start, len);
	s[len] = '\0';
	return text;
}

static int has_node(const xml_reader *r, const char *path)
{
	xmlChar *text = node_text(r, path);
	xmlFree(text);
	return text != NULL;
}

static void get_string(const xml_reader *r, const char *path, char *dst, size_t size)
{
	xmlChar *text = node_text(r, path);
	dst[0] = '\0';
	if (text)
		snprintf(dst, size, "%s", (const char *)text);
	xmlFree(text);
}

/* private: do not echo the value (patient data) */
static r5_status get_double(const xml_reader *r, const char *path, double *out, int private_value)
{
	xmlChar *text = node_text(r, path);
	if (!text)
		return R5_OK;
	char *end = NULL;
	errno = 0;
	double v = strtod((const char *)text, &end);
	int bad = end == (char *)text || *end != '\0' || errno == ERANGE || !isfinite(v);
	r5_status s = R5_OK;
	if (bad)
		s = private_value ? r5_set_error(R5_EINVAL, "ISMRMRD header: %s is not a number", path)
				  : r5_set_error(R5_EINVAL, "ISMRMRD header: %s is '%.40s', not a number", path,
						 (const char *)text);
	else
		*out = v;
	xmlFree(text);
	return s;
}

static r5_status get_float(const xml_reader *r, const char *path, float *out, int private_value)
{
	double v = *out;
	R5_TRY(get_double(r, path, &v, private_value));
	*out = (float)v;
	return R5_OK;
}

/* Integer in [min_value, max_value]; absent leaves *out unchanged. */
static r5_status get_long(const xml_reader *r, const char *path, long *out, long min_value, long max_value)
{
	xmlChar *text = node_text(r, path);
	if (!text)
		return R5_OK;
	char *end = NULL;
	errno = 0;
	long v = strtol((const char *)text, &end, 10);
	r5_status s = R5_OK;
	if (end == (char *)text || *end != '\0' || errno == ERANGE)
		s = r5_set_error(R5_EINVAL, "ISMRMRD header: %s is '%.40s', not an integer", path, (const char *)text);
	else if (v < min_value || v > max_value)
		s = r5_set_error(R5_EINVAL, "ISMRMRD header: %s is %ld, must be in %ld..%ld", path, v, min_value,
				 max_value);
	else
		*out = v;
	xmlFree(text);
	return s;
}

static r5_status get_int(const xml_reader *r, const char *path, int *out, long min_value, long max_value)
{
	long v = *out;
	R5_TRY(get_long(r, path, &v, min_value, max_value));
	*out = (int)v;
	return R5_OK;
}

static void read_subject_study(const xml_reader *r, r5_header *h)
{
	get_string(r, "subjectInformation/patientName", h->patient_name, sizeof h->patient_name);
	get_string(r, "subjectInformation/patientID", h->patient_id, sizeof h->patient_id);
	get_string(r, "subjectInformation/patientBirthdate", h->patient_birthdate, sizeof h->patient_birthdate);
	get_string(r, "subjectInformation/patientGender", h->patient_sex, sizeof h->patient_sex);
	get_string(r, "studyInformation/studyInstanceUID", h->study_uid, sizeof h->study_uid);
	get_string(r, "studyInformation/studyID", h->study_id, sizeof h->study_id);
	get_string(r, "studyInformation/studyDate", h->study_date, sizeof h->study_date);
	get_string(r, "studyInformation/studyTime", h->study_time, sizeof h->study_time);
	get_string(r, "studyInformation/accessionNumber", h->accession_number, sizeof h->accession_number);
	get_string(r, "studyInformation/referringPhysicianName", h->referring_physician, sizeof h->referring_physician);
	get_string(r, "studyInformation/studyDescription", h->study_description, sizeof h->study_description);
	get_string(r, "measurementInformation/measurementID", h->measurement_id, sizeof h->measurement_id);
	get_string(r, "measurementInformation/seriesDate", h->series_date, sizeof h->series_date);
	get_string(r, "measurementInformation/seriesTime", h->series_time, sizeof h->series_time);
	get_string(r, "measurementInformation/patientPosition", h->patient_position, sizeof h->patient_position);
	get_string(r, "measurementInformation/protocolName", h->protocol_name, sizeof h->protocol_name);
	get_string(r, "measurementInformation/seriesDescription", h->series_description, sizeof h->series_description);
	get_string(r, "measurementInformation/seriesInstanceUIDRoot", h->series_uid, sizeof h->series_uid);
	get_string(r, "measurementInformation/frameOfReferenceUID", h->frame_of_reference_uid,
		   sizeof h->frame_of_reference_uid);
	get_string(r, "measurementInformation/sequenceName", h->sequence_name, sizeof h->sequence_name);
}

static r5_status read_numbers(const xml_reader *r, r5_header *h)
{
	R5_TRY(get_float(r, "subjectInformation/patientWeight_kg", &h->patient_weight_kg, 1));
	R5_TRY(get_float(r, "subjectInformation/patientHeight_m", &h->patient_height_m, 1));
	R5_TRY(get_int(r, "measurementInformation/initialSeriesNumber", &h->series_number, -1000000, 1000000000));
	get_string(r, "acquisitionSystemInformation/systemVendor", h->vendor, sizeof h->vendor);
	get_string(r, "acquisitionSystemInformation/systemModel", h->model, sizeof h->model);
	get_string(r, "acquisitionSystemInformation/institutionName", h->institution, sizeof h->institution);
	get_string(r, "acquisitionSystemInformation/stationName", h->station, sizeof h->station);
	get_string(r, "acquisitionSystemInformation/deviceSerialNumber", h->device_serial, sizeof h->device_serial);
	R5_TRY(get_float(r, "acquisitionSystemInformation/systemFieldStrength_T", &h->field_T, 0));
	R5_TRY(get_int(r, "acquisitionSystemInformation/receiverChannels", &h->n_channels, 1, 4096));
	R5_TRY(get_float(r, "acquisitionSystemInformation/relativeReceiverNoiseBandwidth", &h->relative_noise_bw, 0));
	R5_TRY(get_long(r, "experimentalConditions/H1resonanceFrequency_Hz", &h->larmor_hz, 0, 2000000000L));
	R5_TRY(get_float(r, "sequenceParameters/TR", &h->tr_ms, 0));
	R5_TRY(get_float(r, "sequenceParameters/TE", &h->te_ms, 0));
	R5_TRY(get_float(r, "sequenceParameters/TI", &h->ti_ms, 0));
	R5_TRY(get_float(r, "sequenceParameters/flipAngle_deg", &h->flip_deg, 0));
	R5_TRY(get_float(r, "sequenceParameters/echo_spacing", &h->echo_spacing_ms, 0));
	get_string(r, "sequenceParameters/sequence_type", h->sequence_type, sizeof h->sequence_type);
	return R5_OK;
}

static r5_status read_limit(const xml_reader *r, const char *name, r5_limit *limit)
{
	char path[128];
	snprintf(path, sizeof path, "encoding/encodingLimits/%s", name);
	if (!has_node(r, path))
		return R5_OK;
	long v[3] = {0, 0, 0};
	static const char *const parts[3] = {"minimum", "maximum", "center"};
	for (int i = 0; i < 3; i++) {
		char part[160];
		snprintf(part, sizeof part, "%s/%s", path, parts[i]);
		R5_TRY(get_long(r, part, &v[i], 0, 65535));
	}
	if (v[0] > v[1])
		return r5_set_error(R5_EINVAL, "ISMRMRD header: %s has minimum %ld > maximum %ld", path, v[0], v[1]);
	limit->present = 1;
	limit->min = (int)v[0];
	limit->max = (int)v[1];
	limit->center = (int)v[2];
	return R5_OK;
}

static r5_status read_space(const xml_reader *r, const char *space, long matrix[3], float fov[3])
{
	static const char *const axes[3] = {"x", "y", "z"};
	for (int d = 0; d < 3; d++) {
		char path[128];
		snprintf(path, sizeof path, "encoding/%s/matrixSize/%s", space, axes[d]);
		matrix[d] = 0;
		R5_TRY(get_long(r, path, &matrix[d], 1, 1L << 20));
		snprintf(path, sizeof path, "encoding/%s/fieldOfView_mm/%s", space, axes[d]);
		R5_TRY(get_float(r, path, &fov[d], 0));
		if (fov[d] < 0)
			return r5_set_error(R5_EINVAL, "ISMRMRD header: %s is negative (%g)", path, fov[d]);
	}
	return R5_OK;
}

static r5_status read_encoding(const xml_reader *r, r5_header *h)
{
	if (!has_node(r, "encoding"))
		return r5_set_error(R5_EINVAL, "ISMRMRD header has no <encoding> element");
	get_string(r, "encoding/trajectory", h->trajectory, sizeof h->trajectory);
	if (!h->trajectory[0])
		return r5_set_error(R5_EINVAL, "ISMRMRD header: encoding/trajectory is missing");
	R5_TRY(read_space(r, "encodedSpace", h->enc_matrix, h->enc_fov_mm));
	R5_TRY(read_space(r, "reconSpace", h->recon_matrix, h->recon_fov_mm));
	R5_TRY(read_limit(r, "kspace_encoding_step_1", &h->k1));
	R5_TRY(read_limit(r, "kspace_encoding_step_2", &h->k2));
	R5_TRY(read_limit(r, "average", &h->average));
	R5_TRY(read_limit(r, "slice", &h->slice));
	R5_TRY(read_limit(r, "contrast", &h->contrast));
	R5_TRY(read_limit(r, "phase", &h->phase));
	R5_TRY(read_limit(r, "repetition", &h->repetition));
	R5_TRY(read_limit(r, "set", &h->set));
	R5_TRY(read_limit(r, "segment", &h->segment));
	h->accel[0] = h->accel[1] = 1;
	R5_TRY(get_int(r, "encoding/parallelImaging/accelerationFactor/kspace_encoding_step_1", &h->accel[0], 1, 64));
	R5_TRY(get_int(r, "encoding/parallelImaging/accelerationFactor/kspace_encoding_step_2", &h->accel[1], 1, 64));
	get_string(r, "encoding/parallelImaging/calibrationMode", h->calib_mode, sizeof h->calib_mode);
	get_string(r, "encoding/parallelImaging/interleavingDimension", h->interleaving_dim, sizeof h->interleaving_dim);
	return R5_OK;
}

/* Parses the text into a document; a readable message on failure. */
static r5_status parse_document(const char *xml, size_t length, xmlDocPtr *doc, const char **prefix)
{
	*doc = NULL;
	if (!xml || length == 0)
		return r5_set_error(R5_EINVAL, "header is not ISMRMRD XML: the header is empty");
	if (length > (size_t)1 << 30)
		return r5_set_error(R5_EINVAL, "header is not ISMRMRD XML: %zu bytes is too long", length);
	xmlParserCtxtPtr parser = xmlNewParserCtxt();
	if (!parser)
		return r5_set_error(R5_ENOMEM, "XML parser");
	*doc = xmlCtxtReadMemory(parser, xml, (int)length, "header.xml", NULL,
				 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!*doc) {
		const xmlError *e = xmlCtxtGetLastError(parser);
		char message[200] = "unreadable";
		if (e && e->message) {
			snprintf(message, sizeof message, "%s", e->message);
			size_t n = strlen(message);
			while (n > 0 && message[n - 1] == '\n')
				message[--n] = '\0';
		}
		r5_status s = r5_set_error(R5_EINVAL, "header is not ISMRMRD XML: %s (line %d)", message, e ? e->line : 0);
		xmlFreeParserCtxt(parser);
		return s;
	}
	xmlFreeParserCtxt(parser);
	xmlNodePtr root = xmlDocGetRootElement(*doc);
	const char *why = NULL;
	if (!root || xmlStrcmp(root->name, (const xmlChar *)"ismrmrdHeader") != 0)
		why = "the root element is not <ismrmrdHeader>";
	else if (root->ns && xmlStrcmp(root->ns->href, (const xmlChar *)R5_ISMRMRD_NS) != 0)
		why = "the root element is in another namespace than " R5_ISMRMRD_NS;
	if (why) {
		xmlFreeDoc(*doc);
		*doc = NULL;
		return r5_set_error(R5_EINVAL, "header is not ISMRMRD XML: %s", why);
	}
	*prefix = root->ns ? "i:" : "";
	return R5_OK;
}

r5_status r5_header_parse(const char *xml, size_t length, r5_header *out)
{
	memset(out, 0, sizeof *out);
	xmlDocPtr doc = NULL;
	xml_reader reader = {NULL, ""};
	R5_TRY(parse_document(xml, length, &doc, &reader.prefix));
	reader.xpath = xmlXPathNewContext(doc);
	r5_status s = R5_OK;
	if (!reader.xpath || xmlXPathRegisterNs(reader.xpath, (const xmlChar *)"i", (const xmlChar *)R5_ISMRMRD_NS))
		s = r5_set_error(R5_ENOMEM, "XML XPath context");
	if (s == R5_OK) {
		read_subject_study(&reader, out);
		s = read_numbers(&reader, out);
	}
	if (s == R5_OK)
		s = read_encoding(&reader, out);
	if (s == R5_OK) {
		out->xml = malloc(length + 1);
		if (!out->xml)
			s = r5_set_error(R5_ENOMEM, "header text (%zu bytes)", length);
		else {
			memcpy(out->xml, xml, length);
			out->xml[length] = '\0';
		}
	}
	xmlXPathFreeContext(reader.xpath);
	xmlFreeDoc(doc);
	if (s != R5_OK)
		r5_header_clear(out);
	return s;
}

r5_status r5_header_copy(r5_header *dst, const r5_header *src)
{
	*dst = *src;
	dst->xml = NULL;
	if (src->xml) {
		size_t n = strlen(src->xml);
		dst->xml = malloc(n + 1);
		if (!dst->xml) {
			memset(dst, 0, sizeof *dst);
			return r5_set_error(R5_ENOMEM, "header copy (%zu bytes)", n);
		}
		memcpy(dst->xml, src->xml, n + 1);
	}
	return R5_OK;
}

void r5_header_clear(r5_header *h)
{
	if (!h)
		return;
	free(h->xml);
	memset(h, 0, sizeof *h);
}
