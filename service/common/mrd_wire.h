/* MRD streaming protocol v1 ("FIRE", ISMRMRD over TCP) messages: a pure decoder and encoder,
 * no sockets, no server state, so that it is unit-tested and fuzzed on its own
 * (tests/unit/test_mrd_wire.c, tests/fuzz/fuzz_mrd.c). The listener (service/server/mrd.c) and
 * `recon5t send --protocol mrd` use it over a socket through the read/write callbacks.
 *
 * Every message is a little-endian u16 id, then:
 *   1 CONFIG_FILE   1024 bytes, a NUL-padded configuration name
 *   2 CONFIG_TEXT   u32 length + text            3 HEADER  u32 length + ISMRMRD XML
 *   4 CLOSE         nothing                      5 TEXT    u32 length + text
 *   6 QUERY         (Gadgetron) u64 reserved, u64 correlation id, u64 length + query text
 *   7 RESPONSE      (Gadgetron) u64 correlation id, u64 length + text (encoder only)
 *   1008 ACQUISITION  ISMRMRD_AcquisitionHeader (340 bytes), trajectory float32
 *                     [samples x traj dims], data complex64 [channels x samples]
 *   1022 IMAGE        ISMRMRD_ImageHeader (198 bytes), u64 attribute length + attribute XML,
 *                     data [channels x z x y x x] of the header's data_type
 *   1026 WAVEFORM     WaveformHeader (40 bytes), u32 [channels x samples]
 * Every length comes from the wire and is checked against r5_mrd_limits before anything is
 * allocated; an unknown id, a truncated message or a length over a limit is an error whose
 * message names the message and the field. x86-64/aarch64 little-endian hosts only (the
 * header structs are copied as ISMRMRD lays them out). */
#ifndef R5_SERVICE_MRD_WIRE_H
#define R5_SERVICE_MRD_WIRE_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

#include <ismrmrd/ismrmrd.h>

#include "recon/core/status.h"

enum {
	R5_MRD_CONFIG_FILE = 1,
	R5_MRD_CONFIG_TEXT = 2,
	R5_MRD_HEADER = 3,
	R5_MRD_CLOSE = 4,
	R5_MRD_TEXT = 5,
	R5_MRD_QUERY = 6,
	R5_MRD_RESPONSE = 7,
	R5_MRD_ACQUISITION = 1008,
	R5_MRD_IMAGE = 1022,
	R5_MRD_WAVEFORM = 1026,
	R5_MRD_NDARRAY = 1030,
};

#define R5_MRD_CONFIG_FILE_BYTES 1024
#define R5_MRD_WAVEFORM_HEADER_BYTES 40

typedef struct r5_mrd_limits {
	uint64_t max_text_bytes;   /* CONFIG_TEXT, TEXT, QUERY, attribute XML */
	uint64_t max_header_bytes; /* HEADER */
	uint64_t max_data_bytes;   /* one acquisition's, image's or waveform's samples */
} r5_mrd_limits;
extern const r5_mrd_limits r5_mrd_default_limits;

/* Reads exactly n bytes into dst: R5_OK, R5_EIO when the stream ended or failed first
 * (*got set to the bytes that came, so that "closed between messages" is told apart). */
typedef r5_status (*r5_mrd_read_fn)(void *user, void *dst, size_t n, size_t *got);
/* Writes n bytes: R5_OK or R5_EIO. */
typedef r5_status (*r5_mrd_write_fn)(void *user, const void *src, size_t n);

typedef struct r5_mrd_message {
	uint16_t id;
	char config_file[R5_MRD_CONFIG_FILE_BYTES + 1]; /* CONFIG_FILE, NUL-terminated */
	char *text;        /* CONFIG_TEXT, HEADER, TEXT, QUERY: NUL-terminated (trailing NULs cut) */
	size_t text_length;
	uint64_t correlation_id; /* QUERY */
	ISMRMRD_AcquisitionHeader acquisition;
	float *trajectory;       /* ACQUISITION: samples x trajectory_dimensions, or NULL */
	float complex *samples;  /* ACQUISITION: active_channels x number_of_samples */
	ISMRMRD_ImageHeader image;
	void *image_data;        /* IMAGE: image_data_bytes bytes of head.data_type */
	size_t image_data_bytes;
} r5_mrd_message;

/* Reads one message. R5_ENOTFOUND (no error message) when the stream ended cleanly before
 * an id; any other failure frees what was read and says why. The caller frees a message read
 * with R5_OK by r5_mrd_message_clear. */
r5_status r5_mrd_read(r5_mrd_read_fn read, void *user, const r5_mrd_limits *limits, r5_mrd_message *out);
void r5_mrd_message_clear(r5_mrd_message *m);
const char *r5_mrd_id_name(uint16_t id);
/* Bytes of one element of an ISMRMRD data_type (ISMRMRD_USHORT ... ISMRMRD_CXDOUBLE), 0 if none. */
size_t r5_mrd_data_type_bytes(uint16_t data_type);

/* Memory-buffer reader for tests and the fuzz harness. */
typedef struct r5_mrd_buffer {
	const uint8_t *data;
	size_t size, offset;
} r5_mrd_buffer;
r5_status r5_mrd_buffer_read(void *user, void *dst, size_t n, size_t *got);

/* Encoders. Texts are sent with their NUL terminator, as the reference peers do. */
r5_status r5_mrd_write_id(r5_mrd_write_fn write, void *user, uint16_t id);
r5_status r5_mrd_write_config_file(r5_mrd_write_fn write, void *user, const char *name);
r5_status r5_mrd_write_text(r5_mrd_write_fn write, void *user, uint16_t id, const char *text); /* 2, 3, 5 */
r5_status r5_mrd_write_response(r5_mrd_write_fn write, void *user, uint64_t correlation_id, const char *text);
r5_status r5_mrd_write_acquisition(r5_mrd_write_fn write, void *user, const ISMRMRD_AcquisitionHeader *head,
				   const float *trajectory, const float complex *samples);
/* head->attribute_string_len is set from attributes. */
r5_status r5_mrd_write_image(r5_mrd_write_fn write, void *user, const ISMRMRD_ImageHeader *head,
			     const char *attributes, const void *data, size_t data_bytes);

#endif
