// PNG decoding with libpng's classic API (Debian's libpng-dev), which needs setjmp for its
// errors and so lives in C. Its transformations follow OpenCV's PngDecoder for 8-bit colour.
#include "png_reader.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct source {
  const uint8_t *bytes;
  size_t count;
  size_t offset;
};

struct failure {
  jmp_buf jump;
  char *error;
  size_t error_size;
};

static void read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  struct source *source = png_get_io_ptr(png);
  if (length > source->count - source->offset) {
    png_error(png, "the PNG data ends early");
  }
  memcpy(out, source->bytes + source->offset, length);
  source->offset += length;
}

static void on_error(png_structp png, png_const_charp message) {
  struct failure *failure = png_get_error_ptr(png);
  if (failure->error_size > 0) {
    strncpy(failure->error, message, failure->error_size - 1);
    failure->error[failure->error_size - 1] = 0;
  }
  longjmp(failure->jump, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
  (void)png;
  (void)message;
}

int fx_png_is_png(const uint8_t *bytes, size_t count) {
  return count >= 8 && png_sig_cmp(bytes, 0, 8) == 0;
}

int fx_png_read_bgr(const uint8_t *bytes, size_t count, uint64_t max_pixels,
                    uint8_t **pixels, uint32_t *width, uint32_t *height,
                    char *error, size_t error_size) {
  struct source source = {bytes, count, 0};
  struct failure failure;
  failure.error = error;
  failure.error_size = error_size;
  if (error_size > 0) error[0] = 0;
  *pixels = NULL;

  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, on_error, on_warning);
  if (png == NULL) {
    if (error_size > 0) strncpy(error, "libpng could not start", error_size - 1);
    return -1;
  }
  png_infop info = png_create_info_struct(png);
  uint8_t *volatile image = NULL;
  png_bytep *volatile rows = NULL;
  if (info == NULL || setjmp(failure.jump)) {
    free(rows);
    free(image);
    png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    if (error_size > 0 && error[0] == 0) strncpy(error, "libpng could not start", error_size - 1);
    return -1;
  }
  png_set_read_fn(png, &source, read_from_memory);
  png_read_info(png, info);

  png_uint_32 w = 0, h = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, NULL, NULL, NULL);
  if (w == 0 || h == 0 || (uint64_t)w * (uint64_t)h > max_pixels) {
    png_error(png, "the image is larger than the watcher accepts");
  }
  png_set_strip_alpha(png);  // also the alpha a palette's tRNS expands to
  if (bit_depth == 16) png_set_strip_16(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color_type & PNG_COLOR_MASK_COLOR) {
    png_set_bgr(png);
  } else {
    png_set_gray_to_rgb(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (size_t)w * 3) {
    png_error(png, "unexpected row layout after conversion to BGR");
  }

  image = malloc((size_t)w * h * 3);
  rows = malloc(sizeof(png_bytep) * h);
  if (image == NULL || rows == NULL) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < h; y++) rows[y] = image + (size_t)y * w * 3;
  png_read_image(png, rows);
  png_read_end(png, NULL);

  free(rows);
  png_destroy_read_struct(&png, &info, NULL);
  *pixels = image;
  *width = w;
  *height = h;
  return 0;
}

void fx_png_free(uint8_t *pixels) { free(pixels); }
