/* DICOM output: an r5_image_set becomes MR Image Storage instances (SOP class
 * 1.2.840.10008.5.1.4.1.1.4), Part 10, explicit VR little endian, one instance per 2D image
 * (slice, or partition of a 3D volume, times contrast/repetition/phase/...), one series per
 * output kind (magnitude, phase, g-factor). Written without a DICOM library (dicom_enc.c);
 * checked with dciodvfy/dcentvfy/pydicom by tests/integration/test_dicom.py.
 *
 * Modules written (PS3.3 A.4): Patient, General Study, General Series, Frame of Reference,
 * General Equipment, General Image, Image Plane, Image Pixel, MR Image, VOI LUT, SOP Common —
 * every Type 1 and Type 2 attribute (Type 2 left empty when neither request nor header knows).
 *
 * Geometry convention (ISMRMRD and DICOM both patient LPS, millimetres):
 *   - ISMRMRD position = centre of the excited slice (2D) or slab (3D).
 *   - recon5t's centred FFT puts the image centre (x = 0) at index N/2 (integer division), so
 *     voxel (i, j, k) of an N_x x N_y x N_z image has its centre at
 *       position + (i - N_x/2) dx read_dir + (j - N_y/2) dy phase_dir + (k - N_z/2) dz slice_dir
 *     with d = recon FOV / recon matrix (k and N_z only for 3D; 2D slices use their own position).
 *   - Pixel data are stored x fastest: a DICOM row runs along read_dir (Columns = N_x) and
 *     successive rows along phase_dir (Rows = N_y). ImageOrientationPatient = read_dir \ phase_dir,
 *     ImagePositionPatient = centre of voxel (0, 0, k), PixelSpacing = dy \ dx (row spacing, then
 *     column spacing), SliceLocation = IPP · (read_dir × phase_dir).
 *   - Directions are normalised; phase_dir is made orthogonal to read_dir when it is off by
 *     less than 1e-2 (more is an error). When the header's slice_dir points against
 *     read_dir × phase_dir the partitions still go along slice_dir (their positions are
 *     physical); DICOM's own normal is always read × phase and viewers sort by IPP, so the
 *     volume is shown in the right place either way (a warning is logged).
 *   - SliceThickness: 2D = FOV z (ISMRMRD's slice thickness), 3D = FOV z / N_z.
 *     SpacingBetweenSlices: 3D = dz; 2D = distance between the first two slice centres along
 *     the normal (slice thickness when there is one slice).
 *
 * Pixels: 16 bits allocated and stored, unsigned, MONOCHROME2. Magnitude is scaled by one
 * factor per series (series maximum -> 32767, stated in DerivationDescription); phase
 * (-pi..pi] maps linearly onto 0..4095 (RescaleSlope/Intercept are not part of the MR Image
 * IOD, so the mapping is stated in DerivationDescription instead); g-factor is stored x1000.
 * WindowCenter/Width come from the 1st and 99.5th percentiles of the series' stored values.
 *
 * Identity: UIDs are 2.25.<UUID v4 as a decimal integer> from /dev/urandom. Study and frame of
 * reference UIDs come from the request, else the header, else are generated once per writer;
 * series UIDs from the header's series UID (".<kind+1>" appended) else generated; every kind
 * shares study and frame of reference. SeriesNumber = base (+1000 phase, +2000 g-factor).
 *
 * De-identification (req->deidentify = 1; recon5t --deidentify, recon5td's ScanHeader parameter
 * deidentify = 1 or config deidentify_research = 1): PS3.15 Annex E Basic Application Level
 * Confidentiality Profile, Table E.1-1, for every tag this writer puts (Z: zero length, X:
 * removed, U: replaced by a UID derived consistently, D: dummy, K: kept as not listed):
 *   (0008,0012/0013) Instance Creation Date/Time X     (0008,0020/0030) Study Date/Time Z
 *   (0008,0021/0031) Series Date/Time X                (0008,0023/0033) Content Date/Time Z
 *   (0008,0050) Accession Number Z                     (0008,0080) Institution Name X
 *   (0008,0090) Referring Physician's Name Z           (0008,1010) Station Name X
 *   (0008,1030) Study Description X                    (0008,103E) Series Description X
 *   (0008,2111) Derivation Description X               (0010,0010) Patient's Name Z
 *   (0010,0020) Patient ID Z                           (0010,0030) Patient's Birth Date Z
 *   (0010,0040) Patient's Sex Z                        (0010,1030) Patient's Weight X
 *   (0018,1000) Device Serial Number X                 (0018,1030) Protocol Name X
 *   (0020,0010) Study ID Z                             (0008,0018) SOP Instance UID U (new)
 *   (0020,000D/000E/0052) Study/Series/Frame of Reference UID U: 2.25.<first 128 bits of
 *     HMAC-SHA-256(key, original UID)>, so one study's jobs keep one study (a new random UID
 *     when there is no original)
 *   K: Manufacturer, Model, Software Versions, Modality, Patient Position, geometry, pixels.
 * Added: (0012,0062) Patient Identity Removed = YES, (0012,0063) De-identification Method,
 * (0012,0064) its Code Sequence (113100, DCM, "Basic Application Confidentiality Profile"),
 * (0028,0303) Longitudinal Temporal Information Modified = REMOVED. The Enhanced MR writer
 * copies these from the classic instance. */
#ifndef R5_IO_DICOM_H
#define R5_IO_DICOM_H

#include <stddef.h>

#include "../core/status.h"
#include "images.h"

typedef enum r5_dicom_kind {
	R5_DICOM_MAGNITUDE = 0,
	R5_DICOM_PHASE = 1,
	R5_DICOM_GFACTOR = 2, /* needs set->gfactor */
	R5_DICOM_N_KINDS = 3,
} r5_dicom_kind;

#define R5_DICOM_KIND_FLAG(kind) (1u << (kind))

/* Patient/study information from the client (gRPC ScanHeader). Each field NULL or "" means
 * "take it from the ISMRMRD header" (and empty when the header lacks it too). Dates YYYYMMDD
 * or YYYY-MM-DD, sex M/F/O. */
typedef struct r5_dicom_request {
	const char *patient_name, *patient_id, *patient_birth_date, *patient_sex;
	const char *accession_number, *study_description, *referring_physician, *study_uid;
	const char *series_description; /* prefix of each series' description */
	int series_number;              /* base SeriesNumber, 0: header's, else 1 */
	int deidentify;                 /* 1: PS3.15 Annex E Basic Profile (table below) */
	const char *deidentify_key;     /* key of the UID hash; NULL/"": a random one per process */
} r5_dicom_request;

typedef struct r5_dicom_writer r5_dicom_writer;

/* Fixes the UIDs and per-kind scaling/window for one image set (which must outlive the
 * writer). req may be NULL. Errors name the problem ("image set has no images", "slice 2:
 * read_dir and phase_dir are not orthogonal"). */
r5_status r5_dicom_writer_create(const r5_image_set *set, const r5_dicom_request *req, r5_dicom_writer **out);
void r5_dicom_writer_destroy(r5_dicom_writer *w); /* NULL is harmless */

/* Number of instances of a kind (0 for a g-factor series when the set has none). */
long r5_dicom_writer_count(const r5_dicom_writer *w, r5_dicom_kind kind);
/* One instance's Part 10 bytes (index < count), for the gRPC Image events; caller frees. */
r5_status r5_dicom_writer_encode(r5_dicom_writer *w, r5_dicom_kind kind, long index, unsigned char **bytes,
				 size_t *length);
/* UIDs the writer uses (for the service's events and tests). */
const char *r5_dicom_writer_study_uid(const r5_dicom_writer *w);
const char *r5_dicom_writer_series_uid(const r5_dicom_writer *w, r5_dicom_kind kind);
/* File name (relative to the output directory) of an instance: "<kind>/IM_00001.dcm". */
void r5_dicom_instance_path(r5_dicom_kind kind, long index, char *path, size_t size);
const char *r5_dicom_kind_name(r5_dicom_kind kind); /* magnitude | phase | gfactor */

/* Writes every instance of the kinds in kinds_mask (R5_DICOM_KIND_FLAG bits; kinds without
 * data are skipped) under dir/<kind>/ (directories created). n_written (may be NULL) counts
 * files. */
r5_status r5_dicom_write_set(const r5_image_set *set, const r5_dicom_request *req, unsigned kinds_mask,
			     const char *dir, long *n_written);

/* A fresh UID 2.25.<128-bit random UUID v4 in decimal> (at most 44 characters) into uid[65]. */
r5_status r5_dicom_uid_generate(char uid[65]);
/* 1 when text is a valid UID: <= 64 chars, digits and dots, no empty component, no leading 0
 * in a multi-digit component. */
int r5_dicom_uid_valid(const char *text);

/* Geometry of one instance (what goes into Image Plane), exposed for tests and viewers. */
typedef struct r5_dicom_plane {
	double position[3];    /* ImagePositionPatient: centre of the first transmitted voxel, mm */
	double orientation[6]; /* ImageOrientationPatient: row direction, column direction */
	double spacing[2];     /* PixelSpacing: between rows (dy), between columns (dx), mm */
	double thickness_mm, spacing_between_mm, slice_location_mm;
	long rows, columns;
} r5_dicom_plane;
/* Plane of the image at partition `partition` of slice `slice`. */
r5_status r5_dicom_plane_of(const r5_image_set *set, long slice, long partition, r5_dicom_plane *out);

/* --- Enhanced MR Image Storage (SOP class 1.2.840.10008.5.1.4.1.1.4.1, dicom_enhanced.c) ---
 * The option of issue 4 §1: one multi-frame instance per 3D volume (frames = partitions) or per
 * 2D slice stack (frames = slices), for each position of the other dimensions (contrast,
 * repetition, ...), one series per kind. Every frame is the classic writer's instance for the
 * same image read back (same pixels, scaling, window, identity, study and frame of reference);
 * its ImagePositionPatient goes per frame (Plane Position), orientation and pixel measures are
 * shared. The series are new (own SeriesInstanceUID, SeriesNumber = classic + 100). */
typedef struct r5_dicom_enhanced r5_dicom_enhanced;

r5_status r5_dicom_enhanced_create(const r5_image_set *set, const r5_dicom_request *req, r5_dicom_enhanced **out);
void r5_dicom_enhanced_destroy(r5_dicom_enhanced *e); /* NULL is harmless */
/* Instances of a kind (0 for a g-factor series when the set has none), frames per instance. */
long r5_dicom_enhanced_count(const r5_dicom_enhanced *e, r5_dicom_kind kind);
long r5_dicom_enhanced_frames(const r5_dicom_enhanced *e);
/* One multi-frame instance's Part 10 bytes (index < count); caller frees. */
r5_status r5_dicom_enhanced_encode(r5_dicom_enhanced *e, r5_dicom_kind kind, long index, unsigned char **bytes,
				   size_t *length);
const char *r5_dicom_enhanced_series_uid(const r5_dicom_enhanced *e, r5_dicom_kind kind);
/* File name relative to the output directory: "<kind>/MF_00001.dcm". */
void r5_dicom_enhanced_path(r5_dicom_kind kind, long index, char *path, size_t size);
/* Writes every Enhanced MR instance of the kinds in kinds_mask under dir/<kind>/. */
r5_status r5_dicom_write_enhanced(const r5_image_set *set, const r5_dicom_request *req, unsigned kinds_mask,
				  const char *dir, long *n_written);

#endif
