/* The DICOM seam of recon5td: when recon/io's DICOM writer exists, this file turns one image of
 * a set (float pixels, the Image event's geometry, the request's patient/study fields) into a
 * DICOM Part 10 file. Until then DICOM is reported as not built in, and a request for it is
 * answered UNIMPLEMENTED at the ScanHeader. */
#include <stdlib.h>

#include "server.h"

int r5_dicom_out_available(void) { return 0; }

r5_status r5_dicom_out_encode(const r5_image_set *set, const Recon5t__V1__ScanHeader *request, const float *pixels,
			      const Recon5t__V1__Image *geometry, unsigned char **bytes, size_t *size)
{
	(void)set;
	(void)request;
	(void)pixels;
	(void)geometry;
	*bytes = NULL;
	*size = 0;
	return r5_set_error(R5_ENOTSUP, "DICOM output is not built into this server");
}
