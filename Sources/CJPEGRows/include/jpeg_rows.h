#ifndef FX_JPEG_ROWS_H
#define FX_JPEG_ROWS_H

#include <stddef.h>
#include <stdint.h>

/// A JPEG being decoded row by row into 4-byte BGRX pixels, exactly as TurboJPEG's
/// `tjDecompress2(…, TJPF_BGRX, TJFLAG_ACCURATEDCT)` decodes it (the accurate integer IDCT,
/// fancy upsampling); recoverable damage is decoded as libjpeg recovers from it.
typedef struct fx_jpeg_reader fx_jpeg_reader;

/// Reads the header of the JPEG in `bytes` (which must outlive the reader). Returns 0 and sets
/// `*reader`, `*width` and `*height`; 1 for a CMYK or YCCK JPEG, which this reader does not
/// decode (nothing to close); -1 with libjpeg's reason in `error` (at most `error_size` bytes,
/// NUL-terminated) when the JPEG cannot be read. Nothing is decoded (nor allocated for the
/// pixels) before `fx_jpeg_reader_start`, so the caller can refuse the size first.
int fx_jpeg_reader_open(const uint8_t *bytes, size_t count, fx_jpeg_reader **reader, uint32_t *width,
                        uint32_t *height, char *error, size_t error_size);

/// Starts decoding into BGRX: 0, or -1 with the reason in `error`.
int fx_jpeg_reader_start(fx_jpeg_reader *reader, char *error, size_t error_size);

/// Decodes up to `max_rows` (at most 64) next rows into `pixels`, one row every `row_bytes`
/// bytes. Returns the number of rows decoded (0 once all are), or -1 with the reason in `error`.
int fx_jpeg_reader_read(fx_jpeg_reader *reader, uint8_t *pixels, size_t row_bytes, uint32_t max_rows,
                        char *error, size_t error_size);

/// Reads the rest of the JPEG after its last row, as TurboJPEG does: 0, or -1 with the reason.
int fx_jpeg_reader_finish(fx_jpeg_reader *reader, char *error, size_t error_size);

/// Frees the reader.
void fx_jpeg_reader_close(fx_jpeg_reader *reader);

/// A gray baseline JPEG being encoded eight rows at a time, exactly as TurboJPEG's
/// `tjCompressFromYUVPlanes(…, TJSAMP_GRAY, quality, TJFLAG_ACCURATEDCT)` encodes a plane.
typedef struct fx_jpeg_gray_writer fx_jpeg_gray_writer;

/// Starts a `width` × `height` gray JPEG at `quality` (1–100). Returns 0 and sets `*writer`, or
/// -1 with the reason in `error`.
int fx_jpeg_gray_writer_open(uint32_t width, uint32_t height, int quality, fx_jpeg_gray_writer **writer,
                             char *error, size_t error_size);

/// Encodes the next eight rows. Each row holds the width rounded up to a multiple of 8 pixels
/// (the padding repeats the last pixel); past the last row, repeat the last row. Returns 0, or
/// -1 with the reason in `error`.
int fx_jpeg_gray_writer_write(fx_jpeg_gray_writer *writer, const uint8_t *const rows[8],
                              char *error, size_t error_size);

/// Ends the JPEG once every row is written and points `*bytes` at it (valid until the writer
/// is closed). Returns 0, or -1 with the reason in `error`.
int fx_jpeg_gray_writer_finish(fx_jpeg_gray_writer *writer, const uint8_t **bytes, size_t *count,
                               char *error, size_t error_size);

/// Frees the writer and the JPEG it wrote.
void fx_jpeg_gray_writer_close(fx_jpeg_gray_writer *writer);

#endif
