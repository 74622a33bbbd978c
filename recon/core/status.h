/* recon5t status codes and the thread-local error message.
 *
 * Every library function returns an r5_status; on failure it also leaves a message naming the
 * input and the stage ("header says 32 channels, acquisition 17 has 16") that r5_last_error()
 * returns until the next r5_set_error on the same thread. The service maps codes to gRPC
 * statuses (r5_status_grpc_code) and sends the message to the client. Library code never
 * exits or aborts. */
#ifndef R5_CORE_STATUS_H
#define R5_CORE_STATUS_H

typedef enum r5_status {
	R5_OK = 0,
	R5_EINVAL = 1,     /* bad argument or malformed input */
	R5_ENOMEM = 2,     /* allocation failed or memory budget exceeded */
	R5_EGPU = 3,       /* CUDA / cuFFT failure */
	R5_EIO = 4,        /* file or network I/O */
	R5_ECANCELLED = 5, /* caller asked to stop */
	R5_ETIMEDOUT = 6,  /* deadline passed */
	R5_ENOTSUP = 7,    /* feature not built in or not applicable */
	R5_ERANGE = 8,     /* size out of range (absurd matrix, overflow) */
	R5_EINTERNAL = 9,  /* a bug: an invariant did not hold */
	R5_EBUSY = 10,     /* resource exhausted: queue full, too many streams */
	R5_ENOTFOUND = 11, /* named thing does not exist */
	R5_EDEVICE_LOST = 12, /* the device's context is unusable (CUDA sticky error): the context that
			       * returned it is retired and fails every later call the same way; the
			       * caller destroys it and makes a new one (gRPC UNAVAILABLE: retry) */
} r5_status;

/* Sets the thread-local message (printf format) and returns code, so that
 * `return r5_set_error(R5_EINVAL, "...", ...);` reads naturally. */
r5_status r5_set_error(r5_status code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Prefixes the current message with "context: " (for adding the stage as an error travels up). */
r5_status r5_error_context(r5_status code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

const char *r5_last_error(void);
void r5_clear_error(void);
const char *r5_status_name(r5_status code);

/* Propagate a failing status unchanged. */
#define R5_TRY(expr)                              \
	do {                                          \
		r5_status r5_try_status_ = (expr);        \
		if (r5_try_status_ != R5_OK)              \
			return r5_try_status_;                \
	} while (0)

#endif
