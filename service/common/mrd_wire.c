/* MRD streaming protocol v1 decoder and encoder (mrd_wire.h). Pure: reads and writes through
 * the caller's callbacks; any thread. Sizes are computed in 64 bits, with overflow checks,
 * and compared with the limits before any allocation. */
#include "mrd_wire.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(ISMRMRD_AcquisitionHeader) == 340, "ISMRMRD AcquisitionHeader is 340 bytes on the wire");
_Static_assert(sizeof(ISMRMRD_ImageHeader) == 198, "ISMRMRD ImageHeader is 198 bytes on the wire");

const r5_mrd_limits r5_mrd_default_limits = {
	.max_text_bytes = 1u << 20,
	.max_header_bytes = 4u << 20,
	.max_data_bytes = 256u << 20,
};

const char *r5_mrd_id_name(uint16_t id)
{
	switch (id) {
	case R5_MRD_CONFIG_FILE: return "CONFIG_FILE";
	case R5_MRD_CONFIG_TEXT: return "CONFIG_TEXT";
	case R5_MRD_HEADER: return "HEADER";
	case R5_MRD_CLOSE: return "CLOSE";
	case R5_MRD_TEXT: return "TEXT";
	case R5_MRD_QUERY: return "QUERY";
	case R5_MRD_RESPONSE: return "RESPONSE";
	case R5_MRD_ACQUISITION: return "ACQUISITION";
	case R5_MRD_IMAGE: return "IMAGE";
	case R5_MRD_WAVEFORM: return "WAVEFORM";
	case R5_MRD_NDARRAY: return "NDARRAY";
	default: return "unknown";
	}
}

size_t r5_mrd_data_type_bytes(uint16_t data_type)
{
	switch (data_type) {
	case ISMRMRD_USHORT: case ISMRMRD_SHORT: return 2;
	case ISMRMRD_UINT: case ISMRMRD_INT: case ISMRMRD_FLOAT: return 4;
	case ISMRMRD_DOUBLE: case ISMRMRD_CXFLOAT: return 8;
	case ISMRMRD_CXDOUBLE: return 16;
	default: return 0;
	}
}

r5_status r5_mrd_buffer_read(void *user, void *dst, size_t n, size_t *got)
{
	r5_mrd_buffer *b = user;
	size_t left = b->size - b->offset;
	size_t take = n < left ? n : left;
	memcpy(dst, b->data + b->offset, take);
	b->offset += take;
	*got = take;
	return take == n ? R5_OK : R5_EIO;
}

static r5_status read_exact(r5_mrd_read_fn read, void *user, void *dst, size_t n, const char *what)
{
	size_t got = 0;
	if (n == 0)
		return R5_OK;
	if (read(user, dst, n, &got) != R5_OK)
		return r5_set_error(R5_EIO, "MRD %s: the stream ended after %zu of %zu bytes", what, got, n);
	return R5_OK;
}

/* u32/u64 length + text, NUL-terminated, trailing NULs cut. */
static r5_status read_text(r5_mrd_read_fn read, void *user, uint64_t length, uint64_t limit, const char *what,
			   r5_mrd_message *out)
{
	if (length > limit)
		return r5_set_error(R5_ERANGE, "MRD %s: length %llu bytes is more than the limit of %llu", what,
				    (unsigned long long)length, (unsigned long long)limit);
	out->text = malloc((size_t)length + 1);
	if (!out->text)
		return r5_set_error(R5_ENOMEM, "MRD %s: cannot allocate %llu bytes", what, (unsigned long long)length);
	R5_TRY(read_exact(read, user, out->text, (size_t)length, what));
	out->text[length] = '\0';
	out->text_length = strlen(out->text);
	return R5_OK;
}

static r5_status read_acquisition(r5_mrd_read_fn read, void *user, const r5_mrd_limits *limits, r5_mrd_message *out)
{
	ISMRMRD_AcquisitionHeader *h = &out->acquisition;
	R5_TRY(read_exact(read, user, h, sizeof *h, "ACQUISITION header"));
	uint64_t samples = h->number_of_samples;
	uint64_t traj_bytes = samples * h->trajectory_dimensions * sizeof(float);
	uint64_t data_bytes = samples * h->active_channels * sizeof(float complex);
	if (traj_bytes + data_bytes > limits->max_data_bytes)
		return r5_set_error(R5_ERANGE,
				    "MRD ACQUISITION %u: %u samples x %u channels (+ %u trajectory dims) is %llu bytes, "
				    "more than the limit of %llu",
				    h->scan_counter, h->number_of_samples, h->active_channels, h->trajectory_dimensions,
				    (unsigned long long)(traj_bytes + data_bytes),
				    (unsigned long long)limits->max_data_bytes);
	if (traj_bytes) {
		out->trajectory = malloc((size_t)traj_bytes);
		if (!out->trajectory)
			return r5_set_error(R5_ENOMEM, "MRD ACQUISITION %u: trajectory", h->scan_counter);
		R5_TRY(read_exact(read, user, out->trajectory, (size_t)traj_bytes, "ACQUISITION trajectory"));
	}
	out->samples = malloc(data_bytes ? (size_t)data_bytes : 1);
	if (!out->samples)
		return r5_set_error(R5_ENOMEM, "MRD ACQUISITION %u: data", h->scan_counter);
	return read_exact(read, user, out->samples, (size_t)data_bytes, "ACQUISITION data");
}

static r5_status read_image(r5_mrd_read_fn read, void *user, const r5_mrd_limits *limits, r5_mrd_message *out)
{
	ISMRMRD_ImageHeader *h = &out->image;
	R5_TRY(read_exact(read, user, h, sizeof *h, "IMAGE header"));
	uint64_t attribute_length = 0;
	R5_TRY(read_exact(read, user, &attribute_length, sizeof attribute_length, "IMAGE attribute length"));
	R5_TRY(read_text(read, user, attribute_length, limits->max_text_bytes, "IMAGE attributes", out));
	size_t element = r5_mrd_data_type_bytes(h->data_type);
	if (!element)
		return r5_set_error(R5_EINVAL, "MRD IMAGE: data_type %u is not an ISMRMRD data type", h->data_type);
	uint64_t bytes = (uint64_t)h->matrix_size[0] * h->matrix_size[1] * h->matrix_size[2] * h->channels * element;
	if (bytes > limits->max_data_bytes)
		return r5_set_error(R5_ERANGE, "MRD IMAGE: %ux%ux%u x %u channels is %llu bytes, more than the limit of %llu",
				    h->matrix_size[0], h->matrix_size[1], h->matrix_size[2], h->channels,
				    (unsigned long long)bytes, (unsigned long long)limits->max_data_bytes);
	out->image_data = malloc(bytes ? (size_t)bytes : 1);
	if (!out->image_data)
		return r5_set_error(R5_ENOMEM, "MRD IMAGE: data");
	out->image_data_bytes = (size_t)bytes;
	return read_exact(read, user, out->image_data, (size_t)bytes, "IMAGE data");
}

/* Read and dropped in chunks: a waveform is accepted and ignored. */
static r5_status skip_waveform(r5_mrd_read_fn read, void *user, const r5_mrd_limits *limits)
{
	uint8_t head[R5_MRD_WAVEFORM_HEADER_BYTES];
	R5_TRY(read_exact(read, user, head, sizeof head, "WAVEFORM header"));
	uint16_t samples, channels;
	/* WaveformHeader (pack 8): version u16 @0, flags u64 @8, measurement_uid u32 @16,
	 * scan_counter u32 @20, time_stamp u32 @24, number_of_samples u16 @28, channels u16 @30,
	 * sample_time_us float @32, waveform_id u16 @36 */
	memcpy(&samples, head + 28, 2);
	memcpy(&channels, head + 30, 2);
	uint64_t bytes = (uint64_t)samples * channels * sizeof(uint32_t);
	if (bytes > limits->max_data_bytes)
		return r5_set_error(R5_ERANGE, "MRD WAVEFORM: %llu bytes, more than the limit", (unsigned long long)bytes);
	uint8_t chunk[4096];
	while (bytes) {
		size_t n = bytes < sizeof chunk ? (size_t)bytes : sizeof chunk;
		R5_TRY(read_exact(read, user, chunk, n, "WAVEFORM data"));
		bytes -= n;
	}
	return R5_OK;
}

static r5_status read_body(r5_mrd_read_fn read, void *user, const r5_mrd_limits *limits, r5_mrd_message *out)
{
	uint32_t length32 = 0;
	uint64_t words[3];
	switch (out->id) {
	case R5_MRD_CONFIG_FILE:
		R5_TRY(read_exact(read, user, out->config_file, R5_MRD_CONFIG_FILE_BYTES, "CONFIG_FILE"));
		out->config_file[R5_MRD_CONFIG_FILE_BYTES] = '\0';
		return R5_OK;
	case R5_MRD_CONFIG_TEXT:
	case R5_MRD_HEADER:
	case R5_MRD_TEXT:
		R5_TRY(read_exact(read, user, &length32, sizeof length32, r5_mrd_id_name(out->id)));
		return read_text(read, user, length32,
				 out->id == R5_MRD_HEADER ? limits->max_header_bytes : limits->max_text_bytes,
				 r5_mrd_id_name(out->id), out);
	case R5_MRD_CLOSE:
		return R5_OK;
	case R5_MRD_QUERY:
		R5_TRY(read_exact(read, user, words, sizeof words, "QUERY"));
		out->correlation_id = words[1];
		return read_text(read, user, words[2], limits->max_text_bytes, "QUERY", out);
	case R5_MRD_ACQUISITION:
		return read_acquisition(read, user, limits, out);
	case R5_MRD_IMAGE:
		return read_image(read, user, limits, out);
	case R5_MRD_WAVEFORM:
		return skip_waveform(read, user, limits);
	case R5_MRD_NDARRAY:
		return r5_set_error(R5_ENOTSUP, "MRD NDARRAY (1030) is not accepted as input by recon5t");
	default:
		return r5_set_error(R5_EINVAL, "MRD message id %u is not a message recon5t knows", out->id);
	}
}

r5_status r5_mrd_read(r5_mrd_read_fn read, void *user, const r5_mrd_limits *limits, r5_mrd_message *out)
{
	memset(out, 0, sizeof *out);
	uint8_t id[2];
	size_t got = 0;
	if (read(user, id, sizeof id, &got) != R5_OK) {
		if (got == 0)
			return R5_ENOTFOUND;
		return r5_set_error(R5_EIO, "MRD: the stream ended inside a message id");
	}
	out->id = (uint16_t)(id[0] | id[1] << 8);
	r5_status status = read_body(read, user, limits ? limits : &r5_mrd_default_limits, out);
	if (status != R5_OK)
		r5_mrd_message_clear(out);
	return status;
}

void r5_mrd_message_clear(r5_mrd_message *m)
{
	free(m->text);
	free(m->trajectory);
	free(m->samples);
	free(m->image_data);
	uint16_t id = m->id;
	memset(m, 0, sizeof *m);
	m->id = id;
}

/* ---------------------------------------------------------------- encoders */

r5_status r5_mrd_write_id(r5_mrd_write_fn write, void *user, uint16_t id)
{
	uint8_t b[2] = {(uint8_t)(id & 0xff), (uint8_t)(id >> 8)};
	return write(user, b, 2);
}

r5_status r5_mrd_write_config_file(r5_mrd_write_fn write, void *user, const char *name)
{
	char padded[R5_MRD_CONFIG_FILE_BYTES] = {0};
	size_t n = strlen(name);
	if (n >= sizeof padded)
		return r5_set_error(R5_EINVAL, "MRD CONFIG_FILE: the name is %zu bytes, at most 1023", n);
	memcpy(padded, name, n);
	R5_TRY(r5_mrd_write_id(write, user, R5_MRD_CONFIG_FILE));
	return write(user, padded, sizeof padded);
}

r5_status r5_mrd_write_text(r5_mrd_write_fn write, void *user, uint16_t id, const char *text)
{
	size_t n = strlen(text) + 1;
	if (n > UINT32_MAX)
		return r5_set_error(R5_ERANGE, "MRD %s: text too long", r5_mrd_id_name(id));
	uint32_t length = (uint32_t)n;
	R5_TRY(r5_mrd_write_id(write, user, id));
	R5_TRY(write(user, &length, sizeof length));
	return write(user, text, n);
}

r5_status r5_mrd_write_response(r5_mrd_write_fn write, void *user, uint64_t correlation_id, const char *text)
{
	uint64_t words[2] = {correlation_id, strlen(text)};
	R5_TRY(r5_mrd_write_id(write, user, R5_MRD_RESPONSE));
	R5_TRY(write(user, words, sizeof words));
	return write(user, text, (size_t)words[1]);
}

r5_status r5_mrd_write_acquisition(r5_mrd_write_fn write, void *user, const ISMRMRD_AcquisitionHeader *head,
				   const float *trajectory, const float complex *samples)
{
	size_t traj = (size_t)head->number_of_samples * head->trajectory_dimensions * sizeof(float);
	size_t data = (size_t)head->number_of_samples * head->active_channels * sizeof(float complex);
	R5_TRY(r5_mrd_write_id(write, user, R5_MRD_ACQUISITION));
	R5_TRY(write(user, head, sizeof *head));
	if (traj)
		R5_TRY(write(user, trajectory, traj));
	return data ? write(user, samples, data) : R5_OK;
}

r5_status r5_mrd_write_image(r5_mrd_write_fn write, void *user, const ISMRMRD_ImageHeader *head,
			     const char *attributes, const void *data, size_t data_bytes)
{
	ISMRMRD_ImageHeader h = *head;
	uint64_t attribute_length = attributes ? strlen(attributes) : 0;
	h.attribute_string_len = (uint32_t)attribute_length;
	R5_TRY(r5_mrd_write_id(write, user, R5_MRD_IMAGE));
	R5_TRY(write(user, &h, sizeof h));
	R5_TRY(write(user, &attribute_length, sizeof attribute_length));
	if (attribute_length)
		R5_TRY(write(user, attributes, (size_t)attribute_length));
	return data_bytes ? write(user, data, data_bytes) : R5_OK;
}
