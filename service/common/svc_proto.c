/* Wire ↔ recon5t conversions for the service (see svc_proto.h). The host is little-endian
 * (x86-64, aarch64): complex64 and float32 bytes are used in place. */
#include "svc_proto.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

static r5_status copy_u16(uint32_t value, uint16_t *out, const char *field, uint32_t counter)
{
	if (value > 65535u)
		return r5_set_error(R5_EINVAL, "acquisition %u: %s = %u does not fit ISMRMRD's 16 bits", counter, field,
				    value);
	*out = (uint16_t)value;
	return R5_OK;
}

/* dst points into ISMRMRD's packed acquisition header: 2-byte aligned, so memcpy, not a float store */
static r5_status copy_floats(const float *src, size_t n, void *dst, size_t max, const char *field, uint32_t counter)
{
	if (n > max)
		return r5_set_error(R5_EINVAL, "acquisition %u: %s has %zu values, at most %zu", counter, field, n, max);
	if (n)
		memcpy(dst, src, n * sizeof *src);
	return R5_OK;
}

static r5_status counters_from_proto(const Recon5t__V1__EncodingCounters *c, ISMRMRD_EncodingCounters *idx,
				     uint32_t counter)
{
	if (!c)
		return R5_OK;
	R5_TRY(copy_u16(c->kspace_encode_step_1, &idx->kspace_encode_step_1, "idx.kspace_encode_step_1", counter));
	R5_TRY(copy_u16(c->kspace_encode_step_2, &idx->kspace_encode_step_2, "idx.kspace_encode_step_2", counter));
	R5_TRY(copy_u16(c->average, &idx->average, "idx.average", counter));
	R5_TRY(copy_u16(c->slice, &idx->slice, "idx.slice", counter));
	R5_TRY(copy_u16(c->contrast, &idx->contrast, "idx.contrast", counter));
	R5_TRY(copy_u16(c->phase, &idx->phase, "idx.phase", counter));
	R5_TRY(copy_u16(c->repetition, &idx->repetition, "idx.repetition", counter));
	R5_TRY(copy_u16(c->set, &idx->set, "idx.set", counter));
	R5_TRY(copy_u16(c->segment, &idx->segment, "idx.segment", counter));
	if (c->n_user > ISMRMRD_USER_INTS)
		return r5_set_error(R5_EINVAL, "acquisition %u: idx.user has %zu values, at most %d", counter, c->n_user,
				    ISMRMRD_USER_INTS);
	for (size_t i = 0; i < c->n_user; i++)
		R5_TRY(copy_u16(c->user[i], &idx->user[i], "idx.user", counter));
	return R5_OK;
}

static r5_status check_payload(const Recon5t__V1__Acquisition *m, uint32_t counter)
{
	size_t want = (size_t)m->active_channels * m->number_of_samples * sizeof(float complex);
	if (m->data.len != want)
		return r5_set_error(R5_EINVAL,
				    "acquisition %u: %u channels x %u samples need %zu bytes of complex64, %zu came", counter,
				    m->active_channels, m->number_of_samples, want, m->data.len);
	size_t want_traj = (size_t)m->trajectory_dimensions * m->number_of_samples * sizeof(float);
	if (m->trajectory.len != want_traj)
		return r5_set_error(R5_EINVAL, "acquisition %u: trajectory of %u x %u needs %zu bytes, %zu came", counter,
				    m->number_of_samples, m->trajectory_dimensions, want_traj, m->trajectory.len);
	if (m->active_channels == 0 || m->number_of_samples == 0)
		return r5_set_error(R5_EINVAL, "acquisition %u: %u channels x %u samples is empty", counter,
				    m->active_channels, m->number_of_samples);
	return R5_OK;
}

r5_status r5_svc_acq_from_proto(const Recon5t__V1__Acquisition *m, ISMRMRD_AcquisitionHeader *h,
				const float complex **data, const float **traj)
{
	uint32_t counter = m->scan_counter;
	ismrmrd_init_acquisition_header(h);
	R5_TRY(copy_u16(m->version ? m->version : h->version, &h->version, "version", counter));
	h->flags = m->flags;
	h->measurement_uid = m->measurement_uid;
	h->scan_counter = m->scan_counter;
	h->acquisition_time_stamp = m->acquisition_time_stamp;
	if (m->n_physiology_time_stamp > ISMRMRD_PHYS_STAMPS || m->n_channel_mask > ISMRMRD_CHANNEL_MASKS ||
	    m->n_user_int > ISMRMRD_USER_INTS)
		return r5_set_error(R5_EINVAL, "acquisition %u: too many physiology stamps, channel masks or user ints",
				    counter);
	for (size_t i = 0; i < m->n_physiology_time_stamp; i++)
		h->physiology_time_stamp[i] = m->physiology_time_stamp[i];
	for (size_t i = 0; i < m->n_channel_mask; i++)
		h->channel_mask[i] = m->channel_mask[i];
	for (size_t i = 0; i < m->n_user_int; i++)
		h->user_int[i] = m->user_int[i];
	R5_TRY(copy_u16(m->number_of_samples, &h->number_of_samples, "number_of_samples", counter));
	R5_TRY(copy_u16(m->available_channels, &h->available_channels, "available_channels", counter));
	R5_TRY(copy_u16(m->active_channels, &h->active_channels, "active_channels", counter));
	R5_TRY(copy_u16(m->discard_pre, &h->discard_pre, "discard_pre", counter));
	R5_TRY(copy_u16(m->discard_post, &h->discard_post, "discard_post", counter));
	R5_TRY(copy_u16(m->center_sample, &h->center_sample, "center_sample", counter));
	R5_TRY(copy_u16(m->encoding_space_ref, &h->encoding_space_ref, "encoding_space_ref", counter));
	R5_TRY(copy_u16(m->trajectory_dimensions, &h->trajectory_dimensions, "trajectory_dimensions", counter));
	h->sample_time_us = m->sample_time_us;
	R5_TRY(copy_floats(m->position, m->n_position, h->position, 3, "position", counter));
	R5_TRY(copy_floats(m->read_dir, m->n_read_dir, h->read_dir, 3, "read_dir", counter));
	R5_TRY(copy_floats(m->phase_dir, m->n_phase_dir, h->phase_dir, 3, "phase_dir", counter));
	R5_TRY(copy_floats(m->slice_dir, m->n_slice_dir, h->slice_dir, 3, "slice_dir", counter));
	R5_TRY(copy_floats(m->patient_table_position, m->n_patient_table_position, h->patient_table_position, 3,
			   "patient_table_position", counter));
	R5_TRY(copy_floats(m->user_float, m->n_user_float, h->user_float, ISMRMRD_USER_FLOATS, "user_float", counter));
	R5_TRY(counters_from_proto(m->idx, &h->idx, counter));
	R5_TRY(check_payload(m, counter));
	*data = (const float complex *)(const void *)m->data.data;
	*traj = m->trajectory.len ? (const float *)(const void *)m->trajectory.data : NULL;
	return R5_OK;
}

static void counters_to_proto(const ISMRMRD_EncodingCounters *idx, r5_svc_acq_scratch *s)
{
	Recon5t__V1__EncodingCounters *c = &s->idx;
	recon5t__v1__encoding_counters__init(c);
	c->kspace_encode_step_1 = idx->kspace_encode_step_1;
	c->kspace_encode_step_2 = idx->kspace_encode_step_2;
	c->average = idx->average;
	c->slice = idx->slice;
	c->contrast = idx->contrast;
	c->phase = idx->phase;
	c->repetition = idx->repetition;
	c->set = idx->set;
	c->segment = idx->segment;
	for (int i = 0; i < ISMRMRD_USER_INTS; i++)
		s->user[i] = idx->user[i];
	c->n_user = ISMRMRD_USER_INTS;
	c->user = s->user;
}

void r5_svc_acq_to_proto(const ISMRMRD_AcquisitionHeader *h, const void *data, const void *traj,
			 r5_svc_acq_scratch *s, Recon5t__V1__Acquisition *m)
{
	m->version = h->version;
	m->flags = h->flags;
	m->measurement_uid = h->measurement_uid;
	m->scan_counter = h->scan_counter;
	m->acquisition_time_stamp = h->acquisition_time_stamp;
	memcpy(s->physiology, h->physiology_time_stamp, sizeof s->physiology);
	m->n_physiology_time_stamp = ISMRMRD_PHYS_STAMPS;
	m->physiology_time_stamp = s->physiology;
	memcpy(s->channel_mask, h->channel_mask, sizeof s->channel_mask);
	m->n_channel_mask = ISMRMRD_CHANNEL_MASKS;
	m->channel_mask = s->channel_mask;
	m->number_of_samples = h->number_of_samples;
	m->available_channels = h->available_channels;
	m->active_channels = h->active_channels;
	m->discard_pre = h->discard_pre;
	m->discard_post = h->discard_post;
	m->center_sample = h->center_sample;
	m->encoding_space_ref = h->encoding_space_ref;
	m->trajectory_dimensions = h->trajectory_dimensions;
	m->sample_time_us = h->sample_time_us;
	memcpy(s->position, h->position, sizeof s->position);
	memcpy(s->read_dir, h->read_dir, sizeof s->read_dir);
	memcpy(s->phase_dir, h->phase_dir, sizeof s->phase_dir);
	memcpy(s->slice_dir, h->slice_dir, sizeof s->slice_dir);
	memcpy(s->table, h->patient_table_position, sizeof s->table);
	m->n_position = m->n_read_dir = m->n_phase_dir = m->n_slice_dir = m->n_patient_table_position = 3;
	m->position = s->position;
	m->read_dir = s->read_dir;
	m->phase_dir = s->phase_dir;
	m->slice_dir = s->slice_dir;
	m->patient_table_position = s->table;
	counters_to_proto(&h->idx, s);
	m->idx = &s->idx;
	memcpy(s->user_int, h->user_int, sizeof s->user_int);
	m->n_user_int = ISMRMRD_USER_INTS;
	m->user_int = s->user_int;
	memcpy(s->user_float, h->user_float, sizeof s->user_float);
	m->n_user_float = ISMRMRD_USER_FLOATS;
	m->user_float = s->user_float;
	m->data.len = (size_t)h->active_channels * h->number_of_samples * 8;
	m->data.data = (uint8_t *)(uintptr_t)data;
	m->trajectory.len = traj ? (size_t)h->trajectory_dimensions * h->number_of_samples * 4 : 0;
	m->trajectory.data = (uint8_t *)(uintptr_t)traj;
}

grpc_byte_buffer *r5_svc_pack(const ProtobufCMessage *msg)
{
	size_t size = protobuf_c_message_get_packed_size(msg);
	grpc_slice slice = grpc_slice_malloc(size);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
	grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return buffer;
}

r5_status r5_svc_unpack(grpc_byte_buffer *buffer, const ProtobufCMessageDescriptor *descriptor, const char *what,
			ProtobufCMessage **out)
{
	grpc_byte_buffer_reader reader;
	*out = NULL;
	if (!grpc_byte_buffer_reader_init(&reader, buffer))
		return r5_set_error(R5_EINVAL, "%s: cannot read the message bytes (compressed?)", what);
	grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	size_t size = GRPC_SLICE_LENGTH(all);
	*out = protobuf_c_message_unpack(descriptor, NULL, size, GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	if (!*out)
		return r5_set_error(R5_EINVAL, "%s: %zu bytes are not a valid %s", what, size, descriptor->name);
	return R5_OK;
}

grpc_status_code r5_status_grpc_code(r5_status status)
{
	switch (status) {
	case R5_OK: return GRPC_STATUS_OK;
	case R5_EINVAL:
	case R5_ERANGE: return GRPC_STATUS_INVALID_ARGUMENT;
	case R5_ENOMEM:
	case R5_EBUSY: return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case R5_ECANCELLED: return GRPC_STATUS_CANCELLED;
	case R5_ETIMEDOUT: return GRPC_STATUS_DEADLINE_EXCEEDED;
	case R5_ENOTSUP: return GRPC_STATUS_UNIMPLEMENTED;
	case R5_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
	case R5_EDEVICE_LOST: return GRPC_STATUS_UNAVAILABLE; /* the worker rebuilds its context: retry */
	default: return GRPC_STATUS_INTERNAL;
	}
}

const char *r5_svc_grpc_code_name(grpc_status_code code)
{
	static const char *names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
				      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
				      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
				      "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
	if ((int)code >= 0 && (size_t)code < sizeof names / sizeof names[0])
		return names[code];
	return "UNKNOWN";
}

double r5_svc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
