#ifndef FX_PNG_READER_H
#define FX_PNG_READER_H

#include <stddef.h>
#include <stdint.h>

/// Whether `bytes` start with the PNG signature.
int fx_png_is_png(const uint8_t *bytes, size_t count);

/// Reads the PNG in `bytes` as 8-bit BGR, the way OpenCV's `imdecode(…, IMREAD_COLOR)` does:
/// 16-bit samples become their high byte, alpha is dropped without blending, gray and
/// palette images are expanded, interlaced images are read whole.
///
/// On success returns 0 and sets `*pixels` (width × height × 3 bytes, free with
/// `fx_png_free`), `*width` and `*height`. On failure returns -1 and writes libpng's reason,
/// NUL-terminated, into `error` (at most `error_size` bytes). Images over `max_pixels` pixels
/// are refused before any pixel memory is allocated.
int fx_png_read_bgr(const uint8_t *bytes, size_t count, uint64_t max_pixels,
                    uint8_t **pixels, uint32_t *width, uint32_t *height,
                    char *error, size_t error_size);

/// Frees pixels returned by `fx_png_read_bgr`.
void fx_png_free(uint8_t *pixels);

#endif
