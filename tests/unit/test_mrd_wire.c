/* The MRD v1 decoder/encoder (service/common/mrd_wire.c): round trips of every message the
 * listener reads and writes, and refusals of hostile lengths before any allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service/common/mrd_wire.h"

typedef struct sink {
	uint8_t data[1 << 16];
	size_t size;
} sink;

static r5_status sink_write(void *user, const void *src, size_t n)
{
	sink *s = user;
	if (s->size + n > sizeof s->data)
		return R5_EIO;
	memcpy(s->data + s->size, src, n);
	s->size += n;
	return R5_OK;
}

static void test_round_trip(void **state)
{
	(void)state;
	static sink s;
	s.size = 0;
	assert_int_equal(r5_mrd_write_config_file(sink_write, &s, "sense"), R5_OK);
	assert_int_equal(r5_mrd_write_text(sink_write, &s, R5_MRD_HEADER, "<ismrmrdHeader/>"), R5_OK);
	ISMRMRD_AcquisitionHeader acq;
	ismrmrd_init_acquisition_header(&acq);
	acq.number_of_samples = 8;
	acq.active_channels = 2;
	acq.available_channels = 2;
	acq.trajectory_dimensions = 2;
	acq.scan_counter = 17;
	float traj[16];
	float complex samples[16];
	for (int i = 0; i < 16; i++) {
		traj[i] = (float)i;
		samples[i] = (float)i + I * (float)-i;
	}
	assert_int_equal(r5_mrd_write_acquisition(sink_write, &s, &acq, traj, samples), R5_OK);
	ISMRMRD_ImageHeader img;
	ismrmrd_init_image_header(&img);
	img.matrix_size[0] = 2;
	img.matrix_size[1] = 2;
	img.matrix_size[2] = 1;
	img.channels = 1;
	img.data_type = ISMRMRD_FLOAT;
	float pixels[4] = {1, 2, 3, 4};
	assert_int_equal(r5_mrd_write_image(sink_write, &s, &img, "<ismrmrdMeta/>", pixels, sizeof pixels), R5_OK);
	assert_int_equal(r5_mrd_write_id(sink_write, &s, R5_MRD_CLOSE), R5_OK);

	r5_mrd_buffer in = {s.data, s.size, 0};
	r5_mrd_message m;
	assert_int_equal(r5_mrd_read(r5_mrd_buffer_read, &in, NULL, &m), R5_OK);
	assert_int_equal(m.id, R5_MRD_CONFIG_FILE);
	assert_string_equal(m.config_file, "sense");
	assert_int_equal(r5_mrd_read(r5_mrd_buffer_read, &in, NULL, &m), R5_OK);
	assert_int_equal(m.id, R5_MRD_HEADER);
	assert_string_equal(m.text, "<ismrmrdHeader/>");
	r5_mrd_message_clear(&m);
	assert_int_equal(r5_mrd_read(r5_mrd_buffer_read, &in, NULL, &m), R5_OK);
	assert_int_equal(m.id, R5_MRD_ACQUISITION);
	assert_int_equal(m.acquisition.scan_counter, 17);
	assert_memory_equal(m.trajectory, traj, sizeof traj);
	assert_memory_equal(m.samples, samples, sizeof samples);
	r5_mrd_message_clear(&m);
	assert_int_equal(r5_mrd_read(r5_mrd_buffer_read, &in, NULL, &m), R5_OK);
	assert_int_equal(m.id, R5_MRD_IMAGE);
	assert_string_equal(m.text, "<ismrmrdMeta/>");
	assert_int_equal(m.image_data_bytes, sizeof pixels);
	assert_memory_equal(m.image_data, pixels, sizeof pixels);
	r5_mrd_message_clear(&m);
	assert_int_equal(r5_mrd_read(r5_mrd_buffer_read, &in, NULL, &m), R5_OK);
	assert_int_equal(m.id, R5_MRD_CLOSE);
	/* the stream ends between messages: not an error */
	assert_int_equal(r5_mrd_read(r5_mrd_buffer_read, &in, NULL, &m), R5_ENOTFOUND);
}

static r5_status read_one(const uint8_t *bytes, size_t n)
{
	const r5_mrd_limits limits = {.max_text_bytes = 1024, .max_header_bytes = 4096, .max_data_bytes = 1 << 20};
	r5_mrd_buffer in = {bytes, n, 0};
	r5_mrd_message m;
	r5_status status = r5_mrd_read(r5_mrd_buffer_read, &in, &limits, &m);
	if (status == R5_OK)
		r5_mrd_message_clear(&m);
	return status;
}

static void test_hostile(void **state)
{
	(void)state;
	uint8_t b[400] = {0};
	b[0] = 0x09, b[1] = 0x03; /* 777 */
	assert_int_equal(read_one(b, 2), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "777"));
	b[0] = 3, b[1] = 0; /* HEADER of 0xffffffff bytes */
	memset(b + 2, 0xff, 4);
	assert_int_equal(read_one(b, 6), R5_ERANGE);
	assert_non_null(strstr(r5_last_error(), "limit"));
	b[2] = 100, b[3] = b[4] = b[5] = 0; /* truncated: 100 bytes announced, 10 sent */
	assert_int_equal(read_one(b, 16), R5_EIO);
	assert_non_null(strstr(r5_last_error(), "ended"));
	ISMRMRD_AcquisitionHeader acq;
	ismrmrd_init_acquisition_header(&acq);
	acq.number_of_samples = 65535;
	acq.active_channels = 65535;
	b[0] = 0xf0, b[1] = 0x03; /* 1008 */
	memcpy(b + 2, &acq, sizeof acq);
	assert_int_equal(read_one(b, 2 + sizeof acq), R5_ERANGE);
	b[0] = 1; /* one byte of an id */
	assert_int_equal(read_one(b, 1), R5_EIO);
	b[0] = 0x06, b[1] = 0x04; /* 1030 NDARRAY */
	assert_int_equal(read_one(b, 2), R5_ENOTSUP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip), cmocka_unit_test(test_hostile)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
