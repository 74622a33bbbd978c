/* ISMRMRD XML header -> r5_header with libxml2 XPath (libismrmrd's own parser is C++ only).
 *
 * Documents in the ISMRMRD namespace (http://www.ismrm.org/ISMRMRD) are read through a
 * registered prefix; documents without a namespace are read with plain paths. Required: the
 * root <ismrmrdHeader>, one <encoding> with a <trajectory>. Optional elements that are absent
 * leave 0 / "" (matrix sizes, FOV and receiverChannels 0 mean "take from the data"); present
 * but malformed values are errors naming the element. Strings longer than their field are
 * truncated.
 *
 * Hostile input. The header comes from the network, so: no DTD at all — a document type
 * declaration is refused while parsing (an internal-subset SAX hook stops the parser before any
 * entity is declared) and again after it (doc->intSubset / extSubset), so no entity can be
 * declared, substituted or loaded (xmlNodeGetContent would expand one entity referenced many
 * times without limit: a 100 kB header costing hundreds of MB); no network; a size cap
 * (R5_HEADER_MAX_BYTES_DEFAULT or the caller's). Text is read from an element's own text and
 * CDATA children only, never through entity references. Messages never quote the document (it
 * may hold patient data): parse errors give line, column and libxml2's error code with a fixed
 * description, bad values the element path; a number is printed only after it parsed. */
#include "header.h"

#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlversion.h>
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

/* The element's own text: its text and CDATA children concatenated (nested elements, comments
 * and entity references are skipped, so nothing is ever expanded). Caller frees. */
static char *element_text(xmlNodePtr node)
{
	size_t length = 0;
	for (xmlNodePtr c = node->children; c; c = c->next)
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
			length += strlen((const char *)c->content);
	char *text = malloc(length + 1);
	if (!text)
		return NULL;
	size_t used = 0;
	for (xmlNodePtr c = node->children; c; c = c->next)
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
			size_t n = strlen((const char *)c->content);
			memcpy(text + used, c->content, n);
			used += n;
		}
	text[used] = '\0';
	return text;
}

/* Text of the first element at path, trimmed; NULL when absent. Caller frees. */
static char *node_text(const xml_reader *r, const char *path)
{
	char xpath[512];
	make_xpath(r, path, xpath, sizeof xpath);
	xmlXPathObjectPtr obj = xmlXPathEvalExpression((const xmlChar *)xpath, r->xpath);
	char *text = NULL;
	if (obj && obj->nodesetval && obj->nodesetval->nodeNr > 0)
		text = element_text(obj->nodesetval->nodeTab[0]);
	xmlXPathFreeObject(obj);
	if (!text)
		return NULL;
	/* trim surrounding white space in place */
	char *start = text;
	while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
		start++;
	size_t len = strlen(start);
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' || start[len - 1] == '\n' ||
			   start[len - 1] == '\r'))
		len--;
	memmove(text, start, len);
	text[len] = '\0';
	return text;
}

static int has_node(const xml_reader *r, const char *path)
{
	char *text = node_text(r, path);
	free(text);
	return text != NULL;
}

static void get_string(const xml_reader *r, const char *path, char *dst, size_t size)
{
	char *text = node_text(r, path);
	dst[0] = '\0';
	if (text)
		snprintf(dst, size, "%s", text);
	free(text);
}

/* A value that does not parse is never echoed (it may be patient text): the message names the
 * element and the length of its text. Absent leaves *out unchanged. */
static r5_status get_double(const xml_reader *r, const char *path, double *out)
{
	char *text = node_text(r, path);
	if (!text)
		return R5_OK;
	char *end = NULL;
	errno = 0;
	double v = strtod(text, &end);
	int bad = end == text || *end != '\0' || errno == ERANGE || !isfinite(v);
	r5_status s = R5_OK;
	if (bad)
		s = r5_set_error(R5_EINVAL, "ISMRMRD header: %s is not a number (%zu characters)", path, strlen(text));
	else
		*out = v;
	free(text);
	return s;
}

static r5_status get_float(const xml_reader *r, const char *path, float *out)
{
	double v = *out;
	R5_TRY(get_double(r, path, &v));
	if (fabs(v) > 3.0e38) /* (float)v would be undefined */
		return r5_set_error(R5_EINVAL, "ISMRMRD header: %s is out of the range of a float", path);
	*out = (float)v;
	return R5_OK;
}

/* Integer in [min_value, max_value]; absent leaves *out unchanged. */
static r5_status get_long(const xml_reader *r, const char *path, long *out, long min_value, long max_value)
{
	char *text = node_text(r, path);
	if (!text)
		return R5_OK;
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	r5_status s = R5_OK;
	if (end == text || *end != '\0')
		s = r5_set_error(R5_EINVAL, "ISMRMRD header: %s is not an integer (%zu characters)", path, strlen(text));
	else if (errno == ERANGE)
		s = r5_set_error(R5_EINVAL, "ISMRMRD header: %s is out of range, must be in %ld..%ld", path, min_value,
				 max_value);
	else if (v < min_value || v > max_value)
		s = r5_set_error(R5_EINVAL, "ISMRMRD header: %s is %ld, must be in %ld..%ld", path, v, min_value,
				 max_value);
	else
		*out = v;
	free(text);
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
	R5_TRY(get_float(r, "subjectInformation/patientWeight_kg", &h->patient_weight_kg));
	R5_TRY(get_float(r, "subjectInformation/patientHeight_m", &h->patient_height_m));
	R5_TRY(get_int(r, "measurementInformation/initialSeriesNumber", &h->series_number, -1000000, 1000000000));
	get_string(r, "acquisitionSystemInformation/systemVendor", h->vendor, sizeof h->vendor);
	get_string(r, "acquisitionSystemInformation/systemModel", h->model, sizeof h->model);
	get_string(r, "acquisitionSystemInformation/institutionName", h->institution, sizeof h->institution);
	get_string(r, "acquisitionSystemInformation/stationName", h->station, sizeof h->station);
	get_string(r, "acquisitionSystemInformation/deviceSerialNumber", h->device_serial, sizeof h->device_serial);
	R5_TRY(get_float(r, "acquisitionSystemInformation/systemFieldStrength_T", &h->field_T));
	R5_TRY(get_int(r, "acquisitionSystemInformation/receiverChannels", &h->n_channels, 1, 4096));
	R5_TRY(get_float(r, "acquisitionSystemInformation/relativeReceiverNoiseBandwidth", &h->relative_noise_bw));
	R5_TRY(get_long(r, "experimentalConditions/H1resonanceFrequency_Hz", &h->larmor_hz, 0, 2000000000L));
	R5_TRY(get_float(r, "sequenceParameters/TR", &h->tr_ms));
	R5_TRY(get_float(r, "sequenceParameters/TE", &h->te_ms));
	R5_TRY(get_float(r, "sequenceParameters/TI", &h->ti_ms));
	R5_TRY(get_float(r, "sequenceParameters/flipAngle_deg", &h->flip_deg));
	R5_TRY(get_float(r, "sequenceParameters/echo_spacing", &h->echo_spacing_ms));
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
		R5_TRY(get_float(r, path, &fov[d]));
		if (fov[d] < 0)
			return r5_set_error(R5_EINVAL, "ISMRMRD header: %s is negative (%g)", path, fov[d]);
	}
	return R5_OK;
}

/* encoding/trajectoryDescription: identifier, userParameterLong and userParameterDouble lists */
static r5_status read_trajectory_description(const xml_reader *r, r5_header *h)
{
	const char *base = "encoding/trajectoryDescription";
	char path[160];
	snprintf(path, sizeof path, "%s/identifier", base);
	get_string(r, path, h->traj_identifier, sizeof h->traj_identifier);
	for (int i = 0; i < R5_HEADER_TRAJ_PARAMS; i++) {
		snprintf(path, sizeof path, "%s/userParameterLong[%d]/name", base, i + 1);
		if (!has_node(r, path))
			break;
		get_string(r, path, h->traj_long_name[i], sizeof h->traj_long_name[i]);
		snprintf(path, sizeof path, "%s/userParameterLong[%d]/value", base, i + 1);
		R5_TRY(get_long(r, path, &h->traj_long[i], LONG_MIN, LONG_MAX));
		h->n_traj_long = i + 1;
	}
	for (int i = 0; i < R5_HEADER_TRAJ_PARAMS; i++) {
		snprintf(path, sizeof path, "%s/userParameterDouble[%d]/name", base, i + 1);
		if (!has_node(r, path))
			break;
		get_string(r, path, h->traj_double_name[i], sizeof h->traj_double_name[i]);
		snprintf(path, sizeof path, "%s/userParameterDouble[%d]/value", base, i + 1);
		R5_TRY(get_double(r, path, &h->traj_double[i]));
		h->n_traj_double = i + 1;
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
	return read_trajectory_description(r, h);
}

/* A fixed description of a libxml2 error code: libxml2's own messages quote the document
 * ("Couldn't find end of Start Tag <name>"), which may hold patient data. */
static const char *xml_error_description(int code)
{
	switch (code) {
	case XML_ERR_DOCUMENT_EMPTY: return "the document is empty";
	case XML_ERR_DOCUMENT_START:
	case XML_ERR_LT_REQUIRED: return "the document does not start with an element";
	case XML_ERR_DOCUMENT_END:
	case XML_ERR_EXTRA_CONTENT: return "extra content after the root element";
	case XML_ERR_GT_REQUIRED:
	case XML_ERR_ATTRIBUTE_WITHOUT_VALUE:
	case XML_ERR_ATTRIBUTE_NOT_STARTED:
	case XML_ERR_ATTRIBUTE_NOT_FINISHED:
	case XML_ERR_LT_IN_ATTRIBUTE:
	case XML_ERR_EQUAL_REQUIRED:
	case XML_ERR_SPACE_REQUIRED:
	case XML_ERR_STRING_NOT_CLOSED: return "a malformed start tag or attribute";
	case XML_ERR_ATTRIBUTE_REDEFINED:
	case XML_NS_ERR_ATTRIBUTE_REDEFINED: return "an attribute given twice";
	case XML_ERR_TAG_NAME_MISMATCH:
	case XML_ERR_LTSLASH_REQUIRED: return "an end tag that does not match its start tag";
	case XML_ERR_TAG_NOT_FINISHED:
	case XML_ERR_NOT_WELL_BALANCED: return "the document ends inside an element";
	case XML_ERR_NAME_REQUIRED:
	case XML_ERR_NAME_TOO_LONG:
	case XML_ERR_RESERVED_XML_NAME: return "a malformed element or attribute name";
	case XML_ERR_INVALID_CHAR:
	case XML_ERR_INVALID_CHARREF: return "a character not allowed in XML";
	case XML_ERR_INVALID_ENCODING: return "bytes that are not in the declared encoding";
	case XML_ERR_UNKNOWN_ENCODING:
	case XML_ERR_UNSUPPORTED_ENCODING: return "an unknown or unsupported encoding";
	case XML_ERR_UNDECLARED_ENTITY:
	case XML_ERR_ENTITYREF_SEMICOL_MISSING:
	case XML_ERR_ENTITY_LOOP: return "an entity reference other than &lt; &gt; &amp; &apos; &quot; or &#...;";
	case XML_ERR_COMMENT_NOT_FINISHED:
	case XML_ERR_HYPHEN_IN_COMMENT: return "a malformed comment";
	case XML_ERR_CDATA_NOT_FINISHED:
	case XML_ERR_MISPLACED_CDATA_END: return "a malformed CDATA section";
	case XML_ERR_PI_NOT_FINISHED:
	case XML_ERR_XMLDECL_NOT_FINISHED:
	case XML_ERR_VERSION_MISSING: return "a malformed XML declaration or processing instruction";
	case XML_NS_ERR_UNDEFINED_NAMESPACE:
	case XML_NS_ERR_QNAME: return "an undeclared namespace prefix";
	case XML_ERR_NO_MEMORY: return "out of memory";
	default: return "malformed XML";
	}
}

/* SAX internal-subset hook: a document type declaration stops the parser before its entity
 * declarations are read (ctxt is the parser: the default SAX user data). */
static void refuse_doctype(void *ctxt, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	(void)name;
	(void)external_id;
	(void)system_id;
	xmlStopParser((xmlParserCtxtPtr)ctxt);
}

/* No entity substitution (no XML_PARSE_NOENT), no DTD loading or defaulted attributes, no network. */
#if LIBXML_VERSION >= 21300
#define R5_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NO_XXE | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
#else
#define R5_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
#endif

/* libxml2's failure as a message without any of the document's text. */
static r5_status parse_error(xmlParserCtxtPtr parser)
{
	const xmlError *e = xmlCtxtGetLastError(parser);
	int code = e ? e->code : 0;
	return r5_set_error(R5_EINVAL, "header is not ISMRMRD XML: %s at line %d, column %d (libxml2 error %d)",
			    xml_error_description(code), e ? e->line : 0, e ? e->int2 : 0, code);
}

/* Parses the text into a document; a message naming the position, never the content. */
/* libxml2's global state is made on first use and that is not thread-safe (two ingest threads
 * parsing their first headers at once: ThreadSanitizer saw the race in xmlInitializeGlobalState):
 * initialised once here, the one place recon5t parses XML. */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

/* libxml2 (2.9) reports encoding and I/O errors through the thread's generic error handler,
 * which XML_PARSE_NOERROR does not reach: by default it writes to stderr and quotes the bytes
 * that failed to convert ("bytes 0xFF 0x50 ..."), i.e. header text, into the server's log
 * (found by tests/fuzz/fuzz_header). The handler is per thread: this thread's is silenced. */
static void xml_silent(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static r5_status parse_document(const char *xml, size_t length, size_t max_bytes, xmlDocPtr *doc,
				const char **prefix)
{
	pthread_once(&xml_once, xml_init);
	xmlSetGenericErrorFunc(NULL, xml_silent);
	*doc = NULL;
	if (!xml || length == 0)
		return r5_set_error(R5_EINVAL, "header is not ISMRMRD XML: the header is empty");
	if (max_bytes == 0)
		max_bytes = R5_HEADER_MAX_BYTES_DEFAULT;
	if (max_bytes > INT_MAX) /* xmlCtxtReadMemory takes an int */
		max_bytes = INT_MAX;
	if (length > max_bytes)
		return r5_set_error(R5_EINVAL, "ISMRMRD header: %zu bytes, over the limit of %zu bytes", length,
				    max_bytes);
	xmlParserCtxtPtr parser = xmlNewParserCtxt();
	if (!parser || !parser->sax) {
		xmlFreeParserCtxt(parser);
		return r5_set_error(R5_ENOMEM, "XML parser");
	}
	parser->sax->internalSubset = refuse_doctype;
	*doc = xmlCtxtReadMemory(parser, xml, (int)length, "header.xml", NULL, R5_XML_OPTIONS);
	r5_status s = R5_OK;
	if (parser->errNo == XML_ERR_USER_STOP) /* refuse_doctype (xmlStopParser may leave a doc) */
		s = r5_set_error(R5_EINVAL, "header is not ISMRMRD XML: DOCTYPE/entity declarations are not accepted");
	else if (!*doc)
		s = parse_error(parser);
	if (s != R5_OK && *doc) {
		xmlFreeDoc(*doc);
		*doc = NULL;
	}
	xmlFreeParserCtxt(parser);
	xmlResetLastError(); /* libxml2's per-thread copy of the message quotes the document */
	if (s != R5_OK)
		return s;
	xmlNodePtr root = xmlDocGetRootElement(*doc);
	const char *why = NULL;
	if ((*doc)->intSubset || (*doc)->extSubset) /* the hook above should have stopped it */
		why = "DOCTYPE/entity declarations are not accepted";
	else if (!root || xmlStrcmp(root->name, (const xmlChar *)"ismrmrdHeader") != 0)
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
	return r5_header_parse_limited(xml, length, R5_HEADER_MAX_BYTES_DEFAULT, out);
}

r5_status r5_header_parse_limited(const char *xml, size_t length, size_t max_bytes, r5_header *out)
{
	memset(out, 0, sizeof *out);
	xmlDocPtr doc = NULL;
	xml_reader reader = {NULL, ""};
	R5_TRY(parse_document(xml, length, max_bytes, &doc, &reader.prefix));
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
