/* The framing the sequence harnesses share (fuzz_scan_message, fuzz_kspace): the input is a
 * run of frames, each a 2-byte little-endian length and that many bytes (cut at the end). */
#ifndef R5_FUZZ_FRAMES_H
#define R5_FUZZ_FRAMES_H

#include <stddef.h>
#include <stdint.h>

/* The next frame at *at: 1 with *frame and *length set and *at past it, 0 at the end. */
static inline int r5_fuzz_next_frame(const uint8_t *data, size_t size, size_t *at, const uint8_t **frame,
				     size_t *length)
{
	if (*at + 2 > size)
		return 0;
	size_t n = (size_t)data[*at] | (size_t)data[*at + 1] << 8;
	*at += 2;
	if (n > size - *at)
		n = size - *at;
	*frame = data + *at;
	*length = n;
	*at += n;
	return 1;
}

#endif
