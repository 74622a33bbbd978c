/* The real-time frame schedule (pipeline realtime, service/server/realtime.c): which spokes make
 * frame f and when it is due. Pure arithmetic, header-only, so that the unit test checks exactly
 * what the server runs.
 *
 * Spokes are numbered in arrival order (r5_scan: the order in time). Frame f is the window of
 * frame_spokes consecutive spokes starting at spoke f * frame_step:
 *     spokes [f * frame_step, f * frame_step + frame_spokes)
 * It is due the moment its last spoke, f * frame_step + frame_spokes - 1, has been sorted in; a
 * scan of n spokes therefore has floor((n - frame_spokes) / frame_step) + 1 frames when
 * n >= frame_spokes, none before (the same frames the offline grid pipeline makes from the
 * same keys). frame_step < frame_spokes overlaps windows (a sliding window: a frame every
 * frame_step spokes), frame_step > frame_spokes skips spokes between frames.
 * Both numbers are >= 1 (the caller checks: R5_EINVAL otherwise). */
#ifndef R5_SERVER_REALTIME_FRAMES_H
#define R5_SERVER_REALTIME_FRAMES_H

/* Frames whose last spoke is among the first n_spokes: frames 0 .. result - 1 are due. */
static inline long r5_rt_frames_due(long n_spokes, long frame_spokes, long frame_step)
{
	if (frame_spokes < 1 || frame_step < 1 || n_spokes < frame_spokes)
		return 0;
	return (n_spokes - frame_spokes) / frame_step + 1;
}

/* First spoke of frame f. */
static inline long r5_rt_first_spoke(long frame, long frame_step) { return frame * frame_step; }

/* Spokes that must have arrived for frame f to be due. */
static inline long r5_rt_spokes_needed(long frame, long frame_spokes, long frame_step)
{
	return frame * frame_step + frame_spokes;
}

#endif
