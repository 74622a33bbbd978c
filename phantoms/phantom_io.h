/* What the phantom writers share (phantom_write.c, seq_phantom.c): appending one acquisition and
 * one float magnitude image to an open ISMRMRD dataset. Internal to phantoms/. */
#ifndef R5_PHANTOMS_PHANTOM_IO_H
#define R5_PHANTOMS_PHANTOM_IO_H

#include <complex.h>

#include <ismrmrd/dataset.h>

#include "phantom.h"

/* data [channels][samples]; traj [samples][trajectory_dimensions] or NULL (no trajectory). */
r5_status r5_phantom_append_acquisition(const ISMRMRD_Dataset *dset, const ISMRMRD_AcquisitionHeader *head,
					const float complex *data, const float *traj);

/* Where an image goes: its slice, and for a frame of a dynamic truth its repetition and time. */
typedef struct r5_phantom_image_place {
	int slice;
	int frame;     /* < 0: not a frame; else repetition = frame, image_index = frame + 1 */
	double time_s; /* the frame's time: acquisition_time_stamp (2.5 ms ticks), physiology_time_stamp[0] (ms) */
	double slice_shift_mm; /* the image's centre: p's position + this along the slice direction */
} r5_phantom_image_place;

/* values [matrix z][y][x] of p's matrix as image variable `var` (image_series_index 0), with p's
 * FOV, position and the directions given. `what` names it in errors. */
r5_status r5_phantom_append_image(const ISMRMRD_Dataset *dset, const struct r5_phantom_params *p, const float read[3],
				  const float phase[3], const float slice_dir[3], const char *var, const char *what,
				  r5_phantom_image_place place, const float *values);

#endif
