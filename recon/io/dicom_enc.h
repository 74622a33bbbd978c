/* DICOM Part 10 encoding, explicit VR little endian (PS3.5 §7.1.2, PS3.10 §7.1): a data set
 * is built element by element in any order, then serialised sorted by tag behind the 128-byte
 * preamble, "DICM" and the group 2 file meta information. Values are padded to even length
 * (UI with NUL, text with space, binary with 0); DS/IS values are formatted to fit their 16/12
 * byte limits. Internal to recon/io: dicom.c builds the MR Image IOD on top of it (no
 * sequences), dicom_enhanced.c the Enhanced MR Image IOD (sequences with explicit lengths,
 * PS3.5 §7.5.1, and AT values), reading the classic instances back with r5_dcm_decode.
 *
 * Errors are sticky: the first failed put (allocation, value too long for its VR) is kept in
 * the data set and returned by r5_dcm_encode, so builders can put many elements and check once. */
#ifndef R5_IO_DICOM_ENC_H
#define R5_IO_DICOM_ENC_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

#define R5_DCM_TAG(group, element) (((uint32_t)(group) << 16) | (uint32_t)(element))

typedef struct r5_dcm_element {
	uint32_t tag;
	char vr[3];
	unsigned char *value; /* owned, already padded to even length */
	uint32_t length;
} r5_dcm_element;

typedef struct r5_dcm_dataset {
	r5_dcm_element *elements;
	size_t n, capacity;
	r5_status error; /* first failure, R5_OK while all puts succeeded */
} r5_dcm_dataset;

void r5_dcm_init(r5_dcm_dataset *ds);
void r5_dcm_clear(r5_dcm_dataset *ds); /* frees every value */

/* Text VRs (AE AS CS DA DS DT IS LO LT PN SH ST TM UI UT): value may be NULL or "" (a Type 2
 * empty element). Multiple values are joined with '\\' by the caller. Replaces an existing
 * element with the same tag. Checks the VR's maximum length per value. */
void r5_dcm_put_text(r5_dcm_dataset *ds, uint32_t tag, const char *vr, const char *value);
/* DS with n values, each formatted in at most 16 characters. */
void r5_dcm_put_ds(r5_dcm_dataset *ds, uint32_t tag, const double *values, int n);
void r5_dcm_put_is(r5_dcm_dataset *ds, uint32_t tag, long value);
void r5_dcm_put_us(r5_dcm_dataset *ds, uint32_t tag, uint16_t value);
void r5_dcm_put_ul(r5_dcm_dataset *ds, uint32_t tag, uint32_t value);
/* Binary VRs (OB, OW): bytes copied (little-endian already), padded to even length. */
void r5_dcm_put_bytes(r5_dcm_dataset *ds, uint32_t tag, const char *vr, const void *bytes, size_t length);

/* AT (attribute tags) with n values, each written as group then element (PS3.5 §6.2). */
void r5_dcm_put_at(r5_dcm_dataset *ds, uint32_t tag, const uint32_t *tags, int n);
/* SQ of n_items items (n_items 0: an empty, Type 2 sequence). Each item is serialised now —
 * elements sorted by tag, explicit item length (FFFE,E000) — so the items may be cleared or
 * reused afterwards; an item's sticky error becomes the data set's. Nesting is by building the
 * inner sequence into an item before putting the outer one. */
void r5_dcm_put_sequence(r5_dcm_dataset *ds, uint32_t tag, const r5_dcm_dataset *items, size_t n_items);

/* Reads a Part 10 file written by r5_dcm_encode (explicit VR little endian, defined lengths;
 * sequences are kept as their raw item bytes) into ds without the group 2 elements. ds is
 * initialised here; clear it after use, also on failure. */
r5_status r5_dcm_decode(const unsigned char *bytes, size_t length, r5_dcm_dataset *ds);
/* The element with this tag, or NULL. */
const r5_dcm_element *r5_dcm_find(const r5_dcm_dataset *ds, uint32_t tag);
/* Copies an element (tag, VR, value) from another data set; absent elements are skipped. */
void r5_dcm_copy(r5_dcm_dataset *ds, const r5_dcm_dataset *from, uint32_t tag);

/* Formats one DS value (PS3.5 §6.2: at most 16 bytes) into text[17]. */
void r5_dcm_format_ds(double value, char text[17]);

/* Part 10 file bytes: preamble, DICM, group 2 (explicit VR LE, with group length), then the
 * data set sorted by tag. sop_class / sop_instance fill (0002,0002)/(0002,0003). The caller
 * frees *bytes. */
r5_status r5_dcm_encode(const r5_dcm_dataset *ds, const char *sop_class, const char *sop_instance,
			unsigned char **bytes, size_t *length);

/* The implementation UID and version name recon5t puts in (0002,0012)/(0002,0013). */
#define R5_DCM_IMPLEMENTATION_UID "2.25.186903624915731286214391706153574437641"
#define R5_DCM_TRANSFER_SYNTAX_EXPLICIT_LE "1.2.840.10008.1.2.1"

/* mkdir -p for the output folders of the writers; errors name the path. */
r5_status r5_dcm_make_directory(const char *path);
/* Writes one Part 10 file; errors name the path. */
r5_status r5_dcm_write_file(const char *path, const unsigned char *bytes, size_t length);

#endif
