#include "curl_fetch.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// libcurl's functions, looked up once.
static struct {
  __typeof__(curl_global_init) *global_init;
  __typeof__(curl_easy_init) *easy_init;
  __typeof__(curl_easy_setopt) *easy_setopt;
  __typeof__(curl_easy_perform) *easy_perform;
  __typeof__(curl_easy_getinfo) *easy_getinfo;
  __typeof__(curl_easy_cleanup) *easy_cleanup;
  __typeof__(curl_easy_strerror) *easy_strerror;
} curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_failure[256];

static void load(void) {
  void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) {
    snprintf(load_failure, sizeof load_failure, "libcurl could not be loaded (Debian: libcurl4): %s", dlerror());
    return;
  }
#define FX_LOOK_UP(field, name)                                                              \
  *(void **)&curl.field = dlsym(library, name);                                             \
  if (curl.field == NULL) {                                                                 \
    snprintf(load_failure, sizeof load_failure, "libcurl.so.4 has no %s", name);            \
    return;                                                                                 \
  }
  FX_LOOK_UP(global_init, "curl_global_init")
  FX_LOOK_UP(easy_init, "curl_easy_init")
  FX_LOOK_UP(easy_setopt, "curl_easy_setopt")
  FX_LOOK_UP(easy_perform, "curl_easy_perform")
  FX_LOOK_UP(easy_getinfo, "curl_easy_getinfo")
  FX_LOOK_UP(easy_cleanup, "curl_easy_cleanup")
  FX_LOOK_UP(easy_strerror, "curl_easy_strerror")
#undef FX_LOOK_UP
  if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(load_failure, sizeof load_failure, "libcurl could not be initialised");
    return;
  }
}

int fx_fetch_load(char *reason, size_t reason_size) {
  pthread_once(&load_once, load);
  if (load_failure[0] != '\0') {
    snprintf(reason, reason_size, "%s", load_failure);
    return -1;
  }
  return 0;
}

typedef struct transfer {
  fx_fetch_result *result;
  size_t max_bytes;
  size_t capacity;
  const volatile int *cancelled;
} transfer;

static size_t receive(char *data, size_t size, size_t count, void *user) {
  transfer *t = user;
  size_t length = size * count;
  fx_fetch_result *r = t->result;
  if (length > t->max_bytes - r->body_length) {
    r->too_large = 1;
    return 0;  // stops the transfer with CURLE_WRITE_ERROR
  }
  if (r->body_length + length > t->capacity) {
    size_t capacity = t->capacity == 0 ? 16384 : t->capacity;
    while (capacity < r->body_length + length) capacity *= 2;
    unsigned char *grown = realloc(r->body, capacity);
    if (grown == NULL) return 0;
    r->body = grown;
    t->capacity = capacity;
  }
  memcpy(r->body + r->body_length, data, length);
  r->body_length += length;
  return length;
}

static int progress(void *user, curl_off_t down_total, curl_off_t down_now, curl_off_t up_total,
                    curl_off_t up_now) {
  (void)down_total, (void)down_now, (void)up_total, (void)up_now;
  transfer *t = user;
  if (__atomic_load_n(t->cancelled, __ATOMIC_RELAXED)) {
    t->result->cancelled = 1;
    return 1;  // stops the transfer with CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

static char *copy(const char *text) {
  return text == NULL ? NULL : strdup(text);
}

int fx_fetch_get(const char *url, long timeout_ms, size_t max_bytes, const volatile int *cancelled,
                 fx_fetch_result *result) {
  memset(result, 0, sizeof *result);
  CURL *handle = curl.easy_init();
  if (handle == NULL) {
    result->code = CURLE_FAILED_INIT;
    snprintf(result->error, sizeof result->error, "libcurl could not start a transfer");
    return -1;
  }
  transfer t = {.result = result, .max_bytes = max_bytes, .cancelled = cancelled};
  curl.easy_setopt(handle, CURLOPT_URL, url);
  curl.easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl.easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl.easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl.easy_setopt(handle, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
  curl.easy_setopt(handle, CURLOPT_ACCEPT_ENCODING, "");
  curl.easy_setopt(handle, CURLOPT_USERAGENT, "fxwatcher-crawler");
  curl.easy_setopt(handle, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
  curl.easy_setopt(handle, CURLOPT_WRITEFUNCTION, receive);
  curl.easy_setopt(handle, CURLOPT_WRITEDATA, &t);
  curl.easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, progress);
  curl.easy_setopt(handle, CURLOPT_XFERINFODATA, &t);
  curl.easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
  curl.easy_setopt(handle, CURLOPT_ERRORBUFFER, result->error);

  CURLcode code = curl.easy_perform(handle);
  result->code = code;
  if (code == CURLE_FILESIZE_EXCEEDED) result->too_large = 1;
  if (code == CURLE_OPERATION_TIMEDOUT) result->timed_out = 1;
  if (code != CURLE_OK && result->error[0] == '\0') {
    snprintf(result->error, sizeof result->error, "%s", curl.easy_strerror(code));
  }
  curl.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &result->status);
  char *content_type = NULL;
  if (curl.easy_getinfo(handle, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK) {
    result->content_type = copy(content_type);
  }
  char *redirect = NULL;
  if (curl.easy_getinfo(handle, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK) {
    result->redirect_url = copy(redirect);
  }
  curl.easy_cleanup(handle);
  return code == CURLE_OK ? 0 : -1;
}

void fx_fetch_flag_set(volatile int *flag) {
  __atomic_store_n(flag, 1, __ATOMIC_RELAXED);
}

void fx_fetch_result_free(fx_fetch_result *result) {
  free(result->content_type);
  free(result->redirect_url);
  free(result->body);
  memset(result, 0, sizeof *result);
}
