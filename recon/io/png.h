/* PNG previews: 8-bit grayscale of |image|, scaled so that the 99.5th percentile of the
 * magnitudes maps to 255 (a few bright pixels do not darken the picture).
 *
 * A plane is the first two dimensions of x, y, z that are larger than 1 (x across, y down; a
 * BART [1 Y Z] image gives Y across, Z down). r5_png_write_set writes one file per plane:
 *   DIR/img_s<slice>_c<contrast>_r<repetition>_p<partition>.png
 * with "_m<map>" / "_t<cardiac phase>" / "_a<average>" / "_e<set>" inserted before ".png" only
 * when the set has more than one of those. One scale (the whole set's 99.5th percentile) for
 * all files so that slices compare. At most R5_PNG_MAX_FILES files: with more planes, evenly
 * spaced partitions are written (all slices, contrasts, ... are kept; partitions thinned). */
#ifndef R5_IO_PNG_H
#define R5_IO_PNG_H

#include "../core/array.h"
#include "images.h"

#define R5_PNG_MAX_FILES 256

/* One host image with at most two dimensions larger than 1 among x, y, z (the rest 1). */
r5_status r5_png_write_magnitude(const char *path, const r5_array *image);
/* The directory is created when missing. */
r5_status r5_png_write_set(const char *dir, const r5_image_set *set);
/* An 8-bit RGB picture (pixels row by row from the top, 3 bytes each), for drawings such as
 * seq-report's trajectory (pulseq_report.h). */
r5_status r5_png_write_rgb(const char *path, long width, long height, const unsigned char *rgb);

#endif
