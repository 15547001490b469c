// One HTTP GET with libcurl, loaded with dlopen on first use so that a program linking this
// does not load libcurl (and the TLS and other libraries it pulls in) unless it fetches.
#ifndef FX_CURL_FETCH_H
#define FX_CURL_FETCH_H

#include <stddef.h>

/// What one GET brought back. Strings and the body are malloc'd; free with fx_fetch_result_free.
typedef struct fx_fetch_result {
  /// The HTTP status, 0 when no response arrived.
  long status;
  /// The Content-Type header, or NULL.
  char *content_type;
  /// Where a redirect response points, made absolute, or NULL.
  char *redirect_url;
  /// The body as received (decompressed), at most the limit asked for.
  unsigned char *body;
  size_t body_length;
  /// Non-zero when the body (or its announced length) was over the limit; the transfer stopped.
  int too_large;
  /// Non-zero when the transfer stopped because it was cancelled.
  int cancelled;
  /// Non-zero when the transfer ran out of time.
  int timed_out;
  /// libcurl's result code (0 is success) and its explanation.
  int code;
  char error[256];
} fx_fetch_result;

/// Loads libcurl (libcurl.so.4) if it is not loaded yet. Returns 0, or -1 with why in `reason`.
int fx_fetch_load(char *reason, size_t reason_size);

/// GETs `url` (http or https only) without following redirects, within `timeout_ms`, keeping at
/// most `max_bytes` of body. `cancelled` is polled during the transfer: once it is non-zero
/// the transfer stops. Returns 0 when a response arrived (any status), -1 otherwise (see
/// `result->code`, `error`, `too_large`, `cancelled`, `timed_out`). Call fx_fetch_load first.
int fx_fetch_get(const char *url, long timeout_ms, size_t max_bytes, const volatile int *cancelled,
                 fx_fetch_result *result);

/// Sets a `cancelled` flag, from any thread.
void fx_fetch_flag_set(volatile int *flag);

/// Frees what `result` holds and clears it.
void fx_fetch_result_free(fx_fetch_result *result);

#endif
