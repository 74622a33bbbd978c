/* Conversions between the wire API (protos/recon5t.proto, protobuf-c) and recon5t's own types,
 * shared by the server (recon5td) and the client (recon5t send): acquisitions both ways with
 * every size checked against the bytes that came, and protobuf messages to and from gRPC byte
 * buffers. Nothing here logs patient data. */
#ifndef R5_SVC_PROTO_H
#define R5_SVC_PROTO_H

#include <complex.h>
#include <stddef.h>

#include <grpc/grpc.h>
#include <ismrmrd/ismrmrd.h>

#include "protos/health.pb-c.h"
#include "protos/recon5t.pb-c.h"
#include "recon/core/status.h"

/* Fills an ISMRMRD acquisition header from the wire and points data/traj at the message's bytes
 * (valid while msg lives). Checks that the byte counts match active_channels x
 * number_of_samples complex64 and number_of_samples x trajectory_dimensions float32, and that
 * every field fits its ISMRMRD width; errors name the acquisition by its scan_counter. */
r5_status r5_svc_acq_from_proto(const Recon5t__V1__Acquisition *msg, ISMRMRD_AcquisitionHeader *head,
				const float complex **data, const float **traj);

/* The reverse (client side): fills msg (initialised by the caller) with pointers into head and
 * the sample arrays; the arrays `scratch` (at least 64 values each as described in
 * r5_svc_acq_scratch) hold the repeated fields. Nothing is allocated. */
typedef struct r5_svc_acq_scratch {
	uint32_t physiology[ISMRMRD_PHYS_STAMPS];
	uint64_t channel_mask[ISMRMRD_CHANNEL_MASKS];
	float position[3], read_dir[3], phase_dir[3], slice_dir[3], table[3];
	uint32_t user[ISMRMRD_USER_INTS];
	int32_t user_int[ISMRMRD_USER_INTS];
	float user_float[ISMRMRD_USER_FLOATS];
	Recon5t__V1__EncodingCounters idx;
} r5_svc_acq_scratch;
void r5_svc_acq_to_proto(const ISMRMRD_AcquisitionHeader *head, const void *data, const void *traj,
			 r5_svc_acq_scratch *scratch, Recon5t__V1__Acquisition *msg);

/* Packs a protobuf message into a new byte buffer (NULL when out of memory). */
grpc_byte_buffer *r5_svc_pack(const ProtobufCMessage *msg);
/* Unpacks a byte buffer into a message of the given type; R5_EINVAL naming `what` when the
 * bytes are not one. The caller frees with protobuf_c_message_free_unpacked. */
r5_status r5_svc_unpack(grpc_byte_buffer *buffer, const ProtobufCMessageDescriptor *descriptor, const char *what,
			ProtobufCMessage **out);

/* r5_status → gRPC status code: EINVAL/ERANGE → INVALID_ARGUMENT, ENOMEM/EBUSY →
 * RESOURCE_EXHAUSTED, ECANCELLED → CANCELLED, ETIMEDOUT → DEADLINE_EXCEEDED, ENOTSUP →
 * UNIMPLEMENTED, ENOTFOUND → NOT_FOUND, else INTERNAL. */
grpc_status_code r5_status_grpc_code(r5_status status);
const char *r5_svc_grpc_code_name(grpc_status_code code);

/* Seconds since an arbitrary start (monotonic). */
double r5_svc_now(void);

#endif
