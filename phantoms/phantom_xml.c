/* The ISMRMRD XML header of a phantom scan, written as text in the element order of the
 * ISMRMRD 1.8 schema (ismrmrd.xsd) with every section recon5t's header parser reads
 * (recon/io/header.h): a fake patient, study and series identifiers, a 5 T system, the
 * encoding (oversampled encoded space, recon space, limits, parallel imaging) and TR/TE/flip. */
#include "dynamic.h"
#include "phantom.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct text {
	char *data;
	size_t length, capacity;
	int failed;
} text;

static void put(text *t, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	int need = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	if (t->failed || need < 0) {
		t->failed = 1;
		return;
	}
	if (t->length + (size_t)need + 1 > t->capacity) {
		size_t capacity = (t->capacity + (size_t)need + 1) * 2;
		char *grown = realloc(t->data, capacity);
		if (!grown) {
			t->failed = 1;
			return;
		}
		t->data = grown, t->capacity = capacity;
	}
	va_start(args, fmt);
	vsnprintf(t->data + t->length, (size_t)need + 1, fmt, args);
	va_end(args);
	t->length += (size_t)need;
}

static void put_limit(text *t, const char *name, int min, int max, int center)
{
	put(t, "      <%s><minimum>%d</minimum><maximum>%d</maximum><center>%d</center></%s>\n", name, min, max,
	    center, name);
}

/* A DICOM UID under the 2.25 (UUID-derived integer) root, from a hash of the parameters. */
static unsigned long long uid_hash(const struct r5_phantom_params *p, unsigned long long salt, long long now)
{
	unsigned long long h = 1469598103934665603ULL ^ salt;
	unsigned long long parts[8] = {p->seed, (unsigned long long)p->kind, (unsigned long long)p->matrix[0],
				       (unsigned long long)p->matrix[1], (unsigned long long)p->matrix[2],
				       (unsigned long long)p->n_coils, (unsigned long long)now, salt};
	for (int i = 0; i < 8; i++) {
		h ^= parts[i];
		h *= 1099511628211ULL;
		h ^= h >> 29;
	}
	return h;
}

static void put_subject_study(text *t, const struct r5_phantom_params *p, const struct r5_phantom_encoding *given,
			      const struct tm *now, long long stamp)
{
	char date[16], clock[16];
	strftime(date, sizeof date, "%Y-%m-%d", now);
	strftime(clock, sizeof clock, "%H:%M:%S", now);
	put(t, "  <subjectInformation>\n    <patientName>%s</patientName>\n"
	       "    <patientWeight_kg>70</patientWeight_kg>\n    <patientID>R5PHANTOM</patientID>\n"
	       "    <patientBirthdate>1974-11-21</patientBirthdate>\n    <patientGender>O</patientGender>\n"
	       "  </subjectInformation>\n",
	    p->kind == R5_PHANTOM_VESSEL_WALL ? "PHANTOM^VESSEL WALL"
	    : p->kind == R5_PHANTOM_DYNAMIC   ? "PHANTOM^DYNAMIC"
					      : "PHANTOM^SHEPP LOGAN");
	put(t, "  <studyInformation>\n    <studyDate>%s</studyDate>\n    <studyTime>%s</studyTime>\n"
	       "    <studyID>R5PH%llu</studyID>\n    <accessionNumber>%llu</accessionNumber>\n"
	       "    <referringPhysicianName>RECON5T^PHANTOM</referringPhysicianName>\n"
	       "    <studyDescription>recon5t numerical phantom</studyDescription>\n"
	       "    <studyInstanceUID>2.25.%llu</studyInstanceUID>\n  </studyInformation>\n",
	    date, clock, (unsigned long long)p->seed, uid_hash(p, 4, stamp) % 100000000ULL, uid_hash(p, 1, stamp));
	put(t, "  <measurementInformation>\n    <measurementID>R5PHANTOM_%llu</measurementID>\n"
	       "    <seriesDate>%s</seriesDate>\n    <seriesTime>%s</seriesTime>\n"
	       "    <patientPosition>HFS</patientPosition>\n    <initialSeriesNumber>1</initialSeriesNumber>\n"
	       "    <protocolName>r5_phantom_%s%s%s</protocolName>\n"
	       "    <seriesDescription>%s %dx%dx%d %d coils %s R=%dx%d</seriesDescription>\n"
	       "    <seriesInstanceUIDRoot>2.25.%llu</seriesInstanceUIDRoot>\n"
	       "    <frameOfReferenceUID>2.25.%llu</frameOfReferenceUID>\n  </measurementInformation>\n",
	    uid_hash(p, 5, stamp) % 1000000ULL, date, clock, r5_phantom_kind_name(p->kind), given ? "_seq_" : "",
	    given && given->sequence_name ? given->sequence_name : "",
	    r5_phantom_kind_name(p->kind), p->matrix[0], p->matrix[1], p->matrix[2], p->n_coils,
	    r5_sampling_name(p->sampling), p->accel[0], p->accel[1], uid_hash(p, 2, stamp), uid_hash(p, 3, stamp));
}

/* The dynamic kind (dynamic.h): radial, encoded space = recon space = N x N (the trajectory's
 * units: cycles per FOV of that space; readout oversampling is more samples per spoke, not a
 * larger encoded matrix), one spoke per kspace_encoding_step_1. */
static void put_encoding_radial(text *t, const struct r5_phantom_params *p)
{
	long spokes = (long)p->n_frames * p->frame_spokes, n_read = (long)p->readout_oversampling * p->matrix[0];
	for (int space = 0; space < 2; space++)
		put(t, "    <%s>\n      <matrixSize><x>%d</x><y>%d</y><z>1</z></matrixSize>\n"
		       "      <fieldOfView_mm><x>%.6g</x><y>%.6g</y><z>%.6g</z></fieldOfView_mm>\n    </%s>\n",
		    space ? "reconSpace" : "encodedSpace", p->matrix[0], p->matrix[1], p->fov_mm[0], p->fov_mm[1],
		    p->fov_mm[2], space ? "reconSpace" : "encodedSpace");
	put(t, "    <encodingLimits>\n");
	put_limit(t, "kspace_encoding_step_0", 0, (int)n_read - 1, (int)n_read / 2);
	put_limit(t, "kspace_encoding_step_1", 0, (int)spokes - 1, 0);
	put_limit(t, "kspace_encoding_step_2", 0, 0, 0);
	static const char *const zero[] = {"average", "slice", "contrast", "phase", "repetition", "set", "segment"};
	for (int i = 0; i < 7; i++)
		put_limit(t, zero[i], 0, 0, 0);
	put(t, "    </encodingLimits>\n    <trajectory>radial</trajectory>\n");
}

/* An encoding given by the caller (a Pulseq sequence's, seq_phantom.h). */
static void put_encoding_given(text *t, const struct r5_phantom_encoding *e)
{
	put(t, "  <encoding>\n");
	for (int space = 0; space < 2; space++) {
		const int *m = space ? e->recon : e->encoded;
		const double *f = space ? e->recon_fov_mm : e->encoded_fov_mm;
		put(t, "    <%s>\n      <matrixSize><x>%d</x><y>%d</y><z>%d</z></matrixSize>\n"
		       "      <fieldOfView_mm><x>%.6g</x><y>%.6g</y><z>%.6g</z></fieldOfView_mm>\n    </%s>\n",
		    space ? "reconSpace" : "encodedSpace", m[0], m[1], m[2], f[0], f[1], f[2],
		    space ? "reconSpace" : "encodedSpace");
	}
	put(t, "    <encodingLimits>\n");
	static const char *const step[] = {"kspace_encoding_step_0", "kspace_encoding_step_1", "kspace_encoding_step_2"};
	for (int d = 0; d < 3; d++)
		put_limit(t, step[d], e->limits[d][0], e->limits[d][1], e->limits[d][2]);
	put_limit(t, "average", 0, 0, 0);
	put_limit(t, "slice", 0, e->n_slices > 1 ? e->n_slices - 1 : 0, 0);
	static const char *const zero[] = {"contrast", "phase", "repetition", "set", "segment"};
	for (int i = 0; i < 5; i++)
		put_limit(t, zero[i], 0, 0, 0);
	put(t, "    </encodingLimits>\n    <trajectory>%s</trajectory>\n  </encoding>\n", e->trajectory);
}

static void put_encoding(text *t, const struct r5_phantom_params *p, const struct r5_phantom_encoding *given)
{
	if (given) {
		put_encoding_given(t, given);
		return;
	}
	if (p->kind == R5_PHANTOM_DYNAMIC) {
		put(t, "  <encoding>\n");
		put_encoding_radial(t, p);
		put(t, "  </encoding>\n");
		return;
	}
	int os = p->readout_oversampling, three_d = r5_phantom_is_3d(p);
	put(t, "  <encoding>\n    <encodedSpace>\n      <matrixSize><x>%d</x><y>%d</y><z>%d</z></matrixSize>\n"
	       "      <fieldOfView_mm><x>%.6g</x><y>%.6g</y><z>%.6g</z></fieldOfView_mm>\n    </encodedSpace>\n",
	    os * p->matrix[0], p->matrix[1], p->matrix[2], os * p->fov_mm[0], p->fov_mm[1], p->fov_mm[2]);
	put(t, "    <reconSpace>\n      <matrixSize><x>%d</x><y>%d</y><z>%d</z></matrixSize>\n"
	       "      <fieldOfView_mm><x>%.6g</x><y>%.6g</y><z>%.6g</z></fieldOfView_mm>\n    </reconSpace>\n",
	    p->matrix[0], p->matrix[1], p->matrix[2], p->fov_mm[0], p->fov_mm[1], p->fov_mm[2]);
	put(t, "    <encodingLimits>\n");
	put_limit(t, "kspace_encoding_step_0", 0, os * p->matrix[0] - 1, os * p->matrix[0] / 2);
	put_limit(t, "kspace_encoding_step_1", 0, p->matrix[1] - 1, p->matrix[1] / 2);
	put_limit(t, "kspace_encoding_step_2", 0, p->matrix[2] - 1, three_d ? p->matrix[2] / 2 : 0);
	put_limit(t, "average", 0, 0, 0);
	put_limit(t, "slice", 0, 0, 0);
	put_limit(t, "contrast", 0, 0, 0);
	put_limit(t, "phase", 0, 0, 0);
	put_limit(t, "repetition", 0, 0, 0);
	put_limit(t, "set", 0, 0, 0);
	put_limit(t, "segment", 0, 0, 0);
	put(t, "    </encodingLimits>\n    <trajectory>cartesian</trajectory>\n");
	if (p->sampling != R5_SAMPLING_FULL && (p->accel[0] > 1 || p->accel[1] > 1))
		put(t, "    <parallelImaging>\n      <accelerationFactor><kspace_encoding_step_1>%d"
		       "</kspace_encoding_step_1><kspace_encoding_step_2>%d</kspace_encoding_step_2>"
		       "</accelerationFactor>\n      <calibrationMode>%s</calibrationMode>\n    </parallelImaging>\n",
		    p->accel[0], p->accel[1], p->calib > 0 ? "embedded" : "other");
	put(t, "  </encoding>\n");
}

r5_status r5_phantom_header_xml(const struct r5_phantom_params *p, char **xml)
{
	return r5_phantom_header_xml_encoding(p, NULL, xml);
}

r5_status r5_phantom_header_xml_encoding(const struct r5_phantom_params *p, const struct r5_phantom_encoding *given,
					 char **xml)
{
	R5_TRY(r5_phantom_check(p));
	text t = {0};
	time_t clock_now = time(NULL);
	struct tm now;
	localtime_r(&clock_now, &now);
	long long stamp = (long long)clock_now;
	put(&t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ismrmrdHeader xmlns=\"http://www.ismrm.org/ISMRMRD\" "
		"xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
		"xsi:schemaLocation=\"http://www.ismrm.org/ISMRMRD ismrmrd.xsd\">\n  <version>1</version>\n");
	put_subject_study(&t, p, given, &now, stamp);
	put(&t, "  <acquisitionSystemInformation>\n    <systemVendor>recon5t</systemVendor>\n"
		"    <systemModel>phantom</systemModel>\n    <systemFieldStrength_T>%.3g</systemFieldStrength_T>\n"
		"    <relativeReceiverNoiseBandwidth>1.0</relativeReceiverNoiseBandwidth>\n"
		"    <receiverChannels>%d</receiverChannels>\n    <institutionName>recon5t</institutionName>\n"
		"    <stationName>R5PHANTOM</stationName>\n  </acquisitionSystemInformation>\n",
	    p->field_T, p->n_coils);
	put(&t, "  <experimentalConditions>\n    <H1resonanceFrequency_Hz>%ld</H1resonanceFrequency_Hz>\n"
		"  </experimentalConditions>\n",
	    (long)(p->field_T * 42.577478e6 + 0.5));
	put_encoding(&t, p, given);
	put(&t, "  <sequenceParameters>\n    <TR>%.6g</TR>\n    <TE>%.6g</TE>\n    <TI>0</TI>\n"
		"    <flipAngle_deg>%.6g</flipAngle_deg>\n    <sequence_type>%s</sequence_type>\n"
		"  </sequenceParameters>\n",
	    p->tr_ms, p->te_ms, p->flip_deg,
	    given			      ? "PULSEQ"
	    : p->kind == R5_PHANTOM_VESSEL_WALL ? "TSE3D"
	    : r5_phantom_is_3d(p)		      ? "GRE3D"
						      : "GRE");
	if (p->kind == R5_PHANTOM_DYNAMIC) { /* the frame timing of the truth */
		put(&t, "  <userParameters>\n"
			"    <userParameterLong><name>frame_spokes</name><value>%d</value></userParameterLong>\n"
			"    <userParameterLong><name>n_frames</name><value>%d</value></userParameterLong>\n"
			"    <userParameterLong><name>per_frame_motion</name><value>%d</value></userParameterLong>\n",
		    p->frame_spokes, p->n_frames, p->per_frame_motion);
		if (!given) /* a sequence's own angles are in its trajectory */
			put(&t, "    <userParameterDouble><name>golden_angle_deg</name><value>%.9g</value></userParameterDouble>\n",
			    R5_DYNAMIC_GOLDEN_ANGLE * 180 / 3.14159265358979323846);
		put(&t, "    <userParameterDouble><name>spoke_time_ms</name><value>%.9g</value></userParameterDouble>\n"
			"    <userParameterDouble><name>heart_period_s</name><value>%.9g</value></userParameterDouble>\n"
			"  </userParameters>\n",
		    p->tr_ms, p->heart_period_s);
	}
	put(&t, "</ismrmrdHeader>\n");
	if (t.failed) {
		free(t.data);
		return r5_set_error(R5_ENOMEM, "phantom header XML");
	}
	*xml = t.data;
	return R5_OK;
}
