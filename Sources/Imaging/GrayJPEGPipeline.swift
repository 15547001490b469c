import CJPEGRows
import Dispatch
import Synchronization

/// JPEG in, gray JPEG out, with decoding and encoding running at the same time: the calling
/// thread decodes rows into BGRX while a second thread turns each batch of decoded rows into
/// gray and encodes it, so a frame takes about as long as its decoding instead of decoding plus
/// encoding. One frame at a time uses the second thread; the caller of a frame that finds it
/// busy takes the one-thread way (the cores are busy anyway).
enum GrayJPEGPipeline {
  /// Rows decoded between hand-offs: more is fewer wake-ups, less is an earlier start.
  private static let rowsPerBatch: UInt32 = 32

  /// Where frames are encoded.
  private static let encoder = DispatchQueue(label: "Imaging.GrayJPEGPipeline.encoder")

  /// Whether a frame is using `encoder`.
  private static let busy = Atomic<Bool>(false)

  /// The gray JPEG of the JPEG in `bytes` (exactly `encodeJPEG(decodeGray(bytes))`), or `nil`
  /// when it is CMYK/YCCK or another frame is in the pipeline.
  static func grayJPEG(_ bytes: UnsafeRawBufferPointer, quality: Int) throws(ImageError) -> [UInt8]? {
    guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return nil }
    defer { busy.store(false, ordering: .releasing) }

    var reason = [CChar](repeating: 0, count: 256)
    var reader: OpaquePointer? = nil
    var width: UInt32 = 0, height: UInt32 = 0
    let opened = fx_jpeg_reader_open(
      bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count, &reader, &width, &height, &reason,
      reason.count)
    guard opened != 1 else { return nil }
    guard opened == 0, let reader else {
      throw ImageError("the input is not a readable JPEG: \(ImageCodec.reason(reason))")
    }
    defer { fx_jpeg_reader_close(reader) }
    try ImageCodec.refuseIfTooLarge(width: Int(width), height: Int(height))
    guard fx_jpeg_reader_start(reader, &reason, reason.count) == 0 else {
      throw ImageError("the JPEG could not be decoded: \(ImageCodec.reason(reason))")
    }

    let frame = Frame(width: Int(width), height: Int(height))
    encoder.async { frame.encode(quality: quality) }
    // Decode, publishing the rows done after each batch; on an error, tell the encoder to stop.
    var decodedRows = 0
    var failure: ImageError? = nil
    while decodedRows < frame.height {
      let read = fx_jpeg_reader_read(
        reader, frame.bgrx + decodedRows * frame.width * 4, frame.width * 4, rowsPerBatch, &reason, reason.count)
      guard read > 0 else {
        failure = ImageError("the JPEG could not be decoded: \(read < 0 ? ImageCodec.reason(reason) : "its rows end early")")
        break
      }
      decodedRows += Int(read)
      frame.publish(decodedRows: decodedRows)
    }
    if failure == nil, fx_jpeg_reader_finish(reader, &reason, reason.count) != 0 {
      failure = ImageError("the JPEG could not be decoded: \(ImageCodec.reason(reason))")
    }
    if failure != nil { frame.publish(decodedRows: Frame.abandoned) }
    let result = frame.waitForEncoding()
    if let failure { throw failure }
    return try result.get()
  }

  /// One frame's buffers and the hand-off between its decoding and its encoding.
  private final class Frame: @unchecked Sendable {
    /// The decoded-rows count that tells the encoder to stop: decoding failed.
    static let abandoned = -1

    let width: Int, height: Int
    /// Decoded pixels, 4 bytes each, written by the decoding thread only.
    let bgrx: UnsafeMutableRawPointer
    /// Gray rows padded to a multiple of 8 pixels, as the JPEG writer takes them; encoder only.
    private let gray: UnsafeMutablePointer<UInt8>
    private let grayRowBytes: Int
    /// Rows of `bgrx` ready for the encoder, or `abandoned`.
    private let decodedRows = Atomic<Int>(0)
    /// Signalled after each change of `decodedRows`.
    private let rowsChanged = DispatchSemaphore(value: 0)
    /// Signalled once the encoder is done; `result` is set before.
    private let encoded = DispatchSemaphore(value: 0)
    private var result: Result<[UInt8], ImageError> = .failure(ImageError("the JPEG was not encoded"))

    init(width: Int, height: Int) {
      self.width = width
      self.height = height
      grayRowBytes = (width + 7) / 8 * 8
      bgrx = .allocate(byteCount: width * height * 4, alignment: 16)
      gray = .allocate(capacity: grayRowBytes * height)
    }

    deinit {
      bgrx.deallocate()
      gray.deallocate()
    }

    func publish(decodedRows rows: Int) {
      decodedRows.store(rows, ordering: .releasing)
      rowsChanged.signal()
    }

    func waitForEncoding() -> Result<[UInt8], ImageError> {
      encoded.wait()
      return result
    }

    /// The encoder's side: waits for rows, converts them and writes them eight at a time.
    func encode(quality: Int) {
      result = writeJPEG(quality: quality)
      encoded.signal()
    }

    private func writeJPEG(quality: Int) -> Result<[UInt8], ImageError> {
      var reason = [CChar](repeating: 0, count: 256)
      func notEncoded() -> Result<[UInt8], ImageError> {
        .failure(ImageError("the image could not be encoded as JPEG: \(ImageCodec.reason(reason))"))
      }
      var writer: OpaquePointer? = nil
      guard fx_jpeg_gray_writer_open(UInt32(width), UInt32(height), Int32(quality), &writer, &reason, reason.count) == 0,
        let writer
      else { return notEncoded() }
      defer { fx_jpeg_gray_writer_close(writer) }
      let rows = UnsafeMutablePointer<UnsafePointer<UInt8>?>.allocate(capacity: 8)
      defer { rows.deallocate() }
      var converted = 0, written = 0
      while written < height {
        let available = waitForRows(atLeast: min(written + 8, height))
        guard available != Frame.abandoned else { return .failure(ImageError("the JPEG could not be decoded")) }
        while converted < available {
          convertRow(converted)
          converted += 1
        }
        while written + 8 <= available || (available == height && written < height) {
          for row in 0..<8 { rows[row] = UnsafePointer(gray + min(written + row, height - 1) * grayRowBytes) }
          guard fx_jpeg_gray_writer_write(writer, rows, &reason, reason.count) == 0 else { return notEncoded() }
          written += 8
        }
      }
      var bytes: UnsafePointer<UInt8>? = nil
      var count = 0
      guard fx_jpeg_gray_writer_finish(writer, &bytes, &count, &reason, reason.count) == 0, let bytes else {
        return notEncoded()
      }
      return .success(Array(UnsafeBufferPointer(start: bytes, count: count)))
    }

    /// The decoded-rows count once it reaches `target` (or decoding is abandoned).
    private func waitForRows(atLeast target: Int) -> Int {
      while true {
        let rows = decodedRows.load(ordering: .acquiring)
        if rows >= target || rows == Frame.abandoned { return rows }
        rowsChanged.wait()
      }
    }

    /// Gray row `row` from its BGRX row, padded on the right with its last pixel.
    private func convertRow(_ row: Int) {
      let out = gray + row * grayRowBytes
      ImageCodec.convertToGray(bgrx: UnsafeRawPointer(bgrx + row * width * 4), gray: out, count: width)
      for padding in width..<grayRowBytes { out[padding] = out[width - 1] }
    }
  }
}
