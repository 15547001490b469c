// Row-by-row JPEG decoding and gray JPEG encoding with libjpeg-turbo's libjpeg API (Debian's
// libjpeg62-turbo-dev), whose errors need setjmp and so live in C. The settings are
// TurboJPEG's, so the pixels and bytes are those of the Imaging module's TurboJPEG calls.
#include "jpeg_rows.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/// libjpeg's error manager, extended with where to jump on an error and its message.
struct failure {
  struct jpeg_error_mgr manager;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void on_error(j_common_ptr info) {
  struct failure *failure = (struct failure *)info->err;
  info->err->format_message(info, failure->message);
  longjmp(failure->jump, 1);
}

/// Warnings (recoverable damage) are not printed; decoding goes on, as in TurboJPEG and OpenCV.
static void on_message(j_common_ptr info) { (void)info; }

static void failure_init(struct failure *failure) {
  jpeg_std_error(&failure->manager);
  failure->manager.error_exit = on_error;
  failure->manager.output_message = on_message;
  failure->message[0] = 0;
}

static int failed(const struct failure *failure, char *error, size_t error_size) {
  if (error_size > 0) {
    strncpy(error, failure->message, error_size - 1);
    error[error_size - 1] = 0;
  }
  return -1;
}

struct fx_jpeg_reader {
  struct jpeg_decompress_struct info;
  struct failure failure;
};

int fx_jpeg_reader_open(const uint8_t *bytes, size_t count, fx_jpeg_reader **out, uint32_t *width,
                        uint32_t *height, char *error, size_t error_size) {
  *out = NULL;
  fx_jpeg_reader *reader = calloc(1, sizeof *reader);
  if (reader == NULL) {
    snprintf(error, error_size, "out of memory");
    return -1;
  }
  failure_init(&reader->failure);
  reader->info.err = &reader->failure.manager;
  if (setjmp(reader->failure.jump)) {
    failed(&reader->failure, error, error_size);
    fx_jpeg_reader_close(reader);
    return -1;
  }
  jpeg_create_decompress(&reader->info);
  jpeg_mem_src(&reader->info, bytes, (unsigned long)count);
  jpeg_read_header(&reader->info, TRUE);
  if (reader->info.jpeg_color_space == JCS_CMYK || reader->info.jpeg_color_space == JCS_YCCK) {
    fx_jpeg_reader_close(reader);
    return 1;
  }
  *width = reader->info.image_width;
  *height = reader->info.image_height;
  *out = reader;
  return 0;
}

int fx_jpeg_reader_start(fx_jpeg_reader *reader, char *error, size_t error_size) {
  if (setjmp(reader->failure.jump)) return failed(&reader->failure, error, error_size);
  reader->info.out_color_space = JCS_EXT_BGRX;
  reader->info.dct_method = JDCT_ISLOW;
  jpeg_start_decompress(&reader->info);
  return 0;
}

int fx_jpeg_reader_read(fx_jpeg_reader *reader, uint8_t *pixels, size_t row_bytes, uint32_t max_rows,
                        char *error, size_t error_size) {
  JSAMPROW rows[64];
  if (max_rows > 64) max_rows = 64;
  uint32_t left = reader->info.output_height - reader->info.output_scanline;
  if (max_rows > left) max_rows = left;
  for (uint32_t row = 0; row < max_rows; row++) rows[row] = pixels + row * row_bytes;
  if (setjmp(reader->failure.jump)) return failed(&reader->failure, error, error_size);
  uint32_t done = 0;
  while (done < max_rows) done += jpeg_read_scanlines(&reader->info, rows + done, max_rows - done);
  return (int)done;
}

int fx_jpeg_reader_finish(fx_jpeg_reader *reader, char *error, size_t error_size) {
  if (setjmp(reader->failure.jump)) return failed(&reader->failure, error, error_size);
  jpeg_finish_decompress(&reader->info);
  return 0;
}

void fx_jpeg_reader_close(fx_jpeg_reader *reader) {
  if (reader == NULL) return;
  jpeg_destroy_decompress(&reader->info);
  free(reader);
}

struct fx_jpeg_gray_writer {
  struct jpeg_compress_struct info;
  struct failure failure;
  unsigned char *output;
  unsigned long size;
};

int fx_jpeg_gray_writer_open(uint32_t width, uint32_t height, int quality, fx_jpeg_gray_writer **out,
                             char *error, size_t error_size) {
  *out = NULL;
  fx_jpeg_gray_writer *writer = calloc(1, sizeof *writer);
  if (writer == NULL) {
    snprintf(error, error_size, "out of memory");
    return -1;
  }
  failure_init(&writer->failure);
  writer->info.err = &writer->failure.manager;
  if (setjmp(writer->failure.jump)) {
    failed(&writer->failure, error, error_size);
    fx_jpeg_gray_writer_close(writer);
    return -1;
  }
  jpeg_create_compress(&writer->info);
  jpeg_mem_dest(&writer->info, &writer->output, &writer->size);
  writer->info.image_width = width;
  writer->info.image_height = height;
  writer->info.input_components = 1;
  writer->info.in_color_space = JCS_GRAYSCALE;
  // TurboJPEG's setCompDefaults for TJSAMP_GRAY with TJFLAG_ACCURATEDCT.
  jpeg_set_defaults(&writer->info);
  jpeg_set_quality(&writer->info, quality, TRUE);
  writer->info.dct_method = JDCT_ISLOW;
  jpeg_set_colorspace(&writer->info, JCS_GRAYSCALE);
  writer->info.comp_info[0].h_samp_factor = 1;
  writer->info.comp_info[0].v_samp_factor = 1;
  writer->info.raw_data_in = TRUE;
  jpeg_start_compress(&writer->info, TRUE);
  *out = writer;
  return 0;
}

int fx_jpeg_gray_writer_write(fx_jpeg_gray_writer *writer, const uint8_t *const rows[8],
                              char *error, size_t error_size) {
  JSAMPROW lines[8];
  for (int row = 0; row < 8; row++) lines[row] = (JSAMPROW)rows[row];
  JSAMPARRAY planes[1] = {lines};
  if (setjmp(writer->failure.jump)) return failed(&writer->failure, error, error_size);
  jpeg_write_raw_data(&writer->info, planes, 8);
  return 0;
}

int fx_jpeg_gray_writer_finish(fx_jpeg_gray_writer *writer, const uint8_t **bytes, size_t *count,
                               char *error, size_t error_size) {
  if (setjmp(writer->failure.jump)) return failed(&writer->failure, error, error_size);
  jpeg_finish_compress(&writer->info);
  *bytes = writer->output;
  *count = writer->size;
  return 0;
}

void fx_jpeg_gray_writer_close(fx_jpeg_gray_writer *writer) {
  if (writer == NULL) return;
  jpeg_destroy_compress(&writer->info);
  free(writer->output);
  free(writer);
}
