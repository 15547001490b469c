import CPNGReader
import CTurboJPEG

/// Reads JPEG and PNG into BGR images and writes JPEG, as OpenCV's `imdecode(…, IMREAD_COLOR)`
/// and `imencode(".jpg", …)` do: TurboJPEG (libjpeg-turbo) with the accurate DCT for JPEG,
/// libpng for PNG.
///
/// What TurboJPEG alone would get wrong and OpenCV does: CMYK and YCCK JPEGs are converted as
/// OpenCV converts them, and EXIF orientation is applied. A JPEG with recoverable damage
/// decodes with a warning, which is success, as in OpenCV.
public enum ImageCodec {
  /// The largest image decoded, in pixels (100 megapixels: 300 MB as BGR); larger ones are
  /// refused from their header, before their pixels are allocated.
  public static let maximumPixels = 100_000_000

  /// The JPEG quality of ``encodeJPEG(_:quality:)``: OpenCV's default.
  public static let defaultQuality = 95

  /// Decodes a JPEG or a PNG into 3-channel BGR.
  public static func decode(_ bytes: UnsafeRawBufferPointer) throws(ImageError) -> Image {
    guard let base = bytes.baseAddress, bytes.count > 0 else { throw ImageError("the input is empty, not an image") }
    if fx_png_is_png(base.assumingMemoryBound(to: UInt8.self), bytes.count) != 0 {
      return try decodePNG(bytes).applyingEXIFOrientation(EXIFOrientation.read(png: bytes))
    }
    guard isJPEG(bytes) else {
      throw ImageError("the input (\(bytes.count) bytes) is neither a JPEG nor a PNG")
    }
    return try decodeJPEG(bytes).applyingEXIFOrientation(EXIFOrientation.read(jpeg: bytes))
  }

  /// Decodes a JPEG or a PNG into gray: exactly `decode(bytes).grayscale()`, faster for a plain
  /// JPEG, which is decoded to 4-byte BGRX pixels so the gray conversion runs on whole words.
  public static func decodeGray(_ bytes: UnsafeRawBufferPointer) throws(ImageError) -> Image {
    guard isJPEG(bytes), let decoded = try decodeJPEGAsBGRX(bytes)
    else { return try decode(bytes).grayscale() }
    let count = decoded.width * decoded.height
    let gray = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
      decoded.pixels.withUnsafeBytes { convertToGray(bgrx: $0.baseAddress!, gray: out.baseAddress!, count: count) }
      initialized = count
    }
    return Image(width: decoded.width, height: decoded.height, channels: 1, pixels: gray)
      .applyingEXIFOrientation(EXIFOrientation.read(jpeg: bytes))
  }

  /// Decodes a JPEG, converts it to gray and encodes that as a gray JPEG at `quality`: exactly
  /// `encodeJPEG(decodeGray(bytes), quality:)`, in about the time of the decoding alone, as
  /// decoding and encoding run at the same time on two threads.
  ///
  /// `nil` when the shortcut does not apply, and the caller takes the long way: PNG, CMYK/YCCK,
  /// an EXIF orientation to apply, or another frame already using the second thread.
  public static func grayJPEG(_ bytes: UnsafeRawBufferPointer, quality: Int = defaultQuality) throws(ImageError)
    -> [UInt8]?
  {
    guard isJPEG(bytes), EXIFOrientation.read(jpeg: bytes) == 1 else { return nil }
    return try GrayJPEGPipeline.grayJPEG(bytes, quality: quality)
  }

  /// OpenCV's BGR → gray formula (see ``Image/grayscale()``) over `count` 4-byte BGRX pixels.
  static func convertToGray(bgrx: UnsafeRawPointer, gray: UnsafeMutablePointer<UInt8>, count: Int) {
    for index in 0..<count {
      let word = UInt32(littleEndian: bgrx.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
      let b = word & 0xFF, g = (word >> 8) & 0xFF, r = (word >> 16) & 0xFF
      gray[index] = UInt8(truncatingIfNeeded: (b &* 3735 &+ g &* 19235 &+ r &* 9798 &+ 16384) >> 15)
    }
  }

  /// Encodes `image` as a baseline JPEG: 4:2:0 for colour, gray for gray, as OpenCV does.
  public static func encodeJPEG(_ image: Image, quality: Int = defaultQuality) throws(ImageError) -> [UInt8] {
    try compressed { handle, output, size in
      image.pixels.withUnsafeBufferPointer { pixels in
        if image.channels == 3 {
          return tjCompress2(
            handle, pixels.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_BGR.rawValue),
            &output, &size, Int32(TJSAMP_420.rawValue), Int32(quality), TJFLAG_ACCURATEDCT)
        }
        // Gray pixels are the JPEG's one plane as they are: handing it over as a plane skips
        // libjpeg's byte-by-byte copy through its colour converter.
        var plane: [UnsafePointer<UInt8>?] = [pixels.baseAddress]
        return tjCompressFromYUVPlanes(
          handle, &plane, Int32(image.width), nil, Int32(image.height), Int32(TJSAMP_GRAY.rawValue),
          &output, &size, Int32(quality), TJFLAG_ACCURATEDCT)
      }
    }
  }

  /// Re-encodes a 4:2:0 colour JPEG without going through BGR: its Y, Cb and Cr planes are
  /// decoded and encoded again at `quality`, skipping the upsampling, the YCbCr → BGR → YCbCr
  /// round trip and the downsampling that `encodeJPEG(decode(…))` does (and that cost as much
  /// as the rest). The result is what that pipeline makes, slightly closer to the input.
  ///
  /// `nil` when the shortcut does not apply, and the caller takes the long way: PNG, gray,
  /// CMYK/YCCK, other subsampling, or an EXIF orientation to apply.
  public static func reencodeJPEG(_ bytes: UnsafeRawBufferPointer, quality: Int = defaultQuality) throws(ImageError)
    -> [UInt8]?
  {
    guard isJPEG(bytes), EXIFOrientation.read(jpeg: bytes) == 1 else { return nil }
    let handle = try decompressor()
    defer { tjDestroy(handle) }
    let source = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
    let (width, height, subsampling, colorspace) = try header(handle, source, bytes.count)
    guard colorspace == Int32(TJCS_YCbCr.rawValue), subsampling == Int32(TJSAMP_420.rawValue) else { return nil }
    func plane(_ component: Int32) -> [UInt8] {
      [UInt8](repeating: 0, count: Int(tjPlaneSizeYUV(component, width, 0, height, subsampling)))
    }
    var (luma, blue, red) = (plane(0), plane(1), plane(2))
    try decoded(handle) {
      luma.withUnsafeMutableBufferPointer { y in
        blue.withUnsafeMutableBufferPointer { cb in
          red.withUnsafeMutableBufferPointer { cr in
            var pointers: [UnsafeMutablePointer<UInt8>?] = [y.baseAddress, cb.baseAddress, cr.baseAddress]
            return tjDecompressToYUVPlanes(
              handle, source, UInt(bytes.count), &pointers, width, nil, height, TJFLAG_ACCURATEDCT)
          }
        }
      }
    }
    return try compressed { compressor, output, size in
      luma.withUnsafeBufferPointer { y in
        blue.withUnsafeBufferPointer { cb in
          red.withUnsafeBufferPointer { cr in
            var pointers: [UnsafePointer<UInt8>?] = [y.baseAddress, cb.baseAddress, cr.baseAddress]
            return tjCompressFromYUVPlanes(
              compressor, &pointers, width, nil, height, subsampling, &output, &size, Int32(quality), TJFLAG_ACCURATEDCT)
          }
        }
      }
    }
  }

  /// The pixels of a JPEG as BGRX (4 bytes a pixel), or `nil` for a CMYK/YCCK JPEG, which needs
  /// OpenCV's conversion.
  private static func decodeJPEGAsBGRX(_ bytes: UnsafeRawBufferPointer) throws(ImageError)
    -> (width: Int, height: Int, pixels: [UInt8])?
  {
    let handle = try decompressor()
    defer { tjDestroy(handle) }
    let source = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
    let (width, height, _, colorspace) = try header(handle, source, bytes.count)
    guard !isCMYK(colorspace) else { return nil }
    let count = Int(width) * Int(height) * 4
    let pixels = try [UInt8](unsafeUninitializedCapacity: count) { out, initialized throws(ImageError) in
      initialized = count
      try decoded(handle) {
        tjDecompress2(
          handle, source, UInt(bytes.count), out.baseAddress, width, 0, height, Int32(TJPF_BGRX.rawValue),
          TJFLAG_ACCURATEDCT)
      }
    }
    return (Int(width), Int(height), pixels)
  }

  /// Reads a JPEG's header: its size (refused past ``maximumPixels``), subsampling and colour
  /// space.
  private static func header(_ handle: tjhandle, _ source: UnsafePointer<UInt8>, _ count: Int) throws(ImageError)
    -> (width: Int32, height: Int32, subsampling: Int32, colorspace: Int32)
  {
    var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
    guard tjDecompressHeader3(handle, source, UInt(count), &width, &height, &subsampling, &colorspace) == 0 else {
      throw ImageError("the input is not a readable JPEG: \(String(cString: tjGetErrorStr2(handle)))")
    }
    try refuseIfTooLarge(width: Int(width), height: Int(height))
    return (width, height, subsampling, colorspace)
  }

  /// Refuses a JPEG of no pixels or of more than ``maximumPixels``, from its header.
  static func refuseIfTooLarge(width: Int, height: Int) throws(ImageError) {
    guard width > 0, height > 0, width * height <= maximumPixels else {
      throw ImageError("the JPEG is \(width)×\(height), larger than \(maximumPixels) pixels")
    }
  }

  /// The NUL-terminated reason a C reader wrote into `buffer`.
  static func reason(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }

  private static func decodeJPEG(_ bytes: UnsafeRawBufferPointer) throws(ImageError) -> Image {
    let handle = try decompressor()
    defer { tjDestroy(handle) }
    let source = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
    let (width, height, _, colorspace) = try header(handle, source, bytes.count)
    let cmyk = isCMYK(colorspace)
    var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * (cmyk ? 4 : 3))
    try decoded(handle) {
      pixels.withUnsafeMutableBufferPointer { out in
        tjDecompress2(
          handle, source, UInt(bytes.count), out.baseAddress, width, 0, height,
          Int32((cmyk ? TJPF_CMYK : TJPF_BGR).rawValue), TJFLAG_ACCURATEDCT)
      }
    }
    return Image(width: Int(width), height: Int(height), channels: 3, pixels: cmyk ? bgr(fromCMYK: pixels) : pixels)
  }

  // MARK: TurboJPEG

  /// Whether `bytes` start as a JPEG does (SOI, then a marker).
  private static func isJPEG(_ bytes: UnsafeRawBufferPointer) -> Bool {
    bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
  }

  /// Whether a JPEG colour space needs OpenCV's CMYK conversion.
  private static func isCMYK(_ colorspace: Int32) -> Bool {
    colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
  }

  /// A TurboJPEG decompressor; the caller destroys it.
  private static func decompressor() throws(ImageError) -> tjhandle {
    guard let handle = tjInitDecompress() else { throw ImageError("TurboJPEG could not start") }
    return handle
  }

  /// Runs a TurboJPEG decompression; a warning (damage it recovered from) is success, as in
  /// OpenCV, anything else an error.
  private static func decoded(_ handle: tjhandle, _ decompress: () -> Int32) throws(ImageError) {
    if decompress() != 0 && tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) {
      throw ImageError("the JPEG could not be decoded: \(String(cString: tjGetErrorStr2(handle)))")
    }
  }

  /// Runs a TurboJPEG compression into a buffer it allocates and returns the JPEG's bytes.
  private static func compressed(
    _ compress: (tjhandle, inout UnsafeMutablePointer<UInt8>?, inout UInt) -> Int32
  ) throws(ImageError) -> [UInt8] {
    guard let handle = tjInitCompress() else { throw ImageError("TurboJPEG could not start") }
    defer { tjDestroy(handle) }
    var output: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    defer { tjFree(output) }
    guard compress(handle, &output, &size) == 0, let output else {
      throw ImageError("the image could not be encoded as JPEG: \(String(cString: tjGetErrorStr2(handle)))")
    }
    return Array(UnsafeBufferPointer(start: output, count: Int(size)))
  }

  /// OpenCV's CMYK → BGR for JPEG (`icvCvt_CMYK2BGR_8u_C4C3R`): `B = K − ((255 − Y) × K >> 8)`,
  /// and so on for G (M) and R (C).
  private static func bgr(fromCMYK cmyk: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: cmyk.count / 4 * 3)
    for pixel in 0..<(cmyk.count / 4) {
      let c = Int(cmyk[4 * pixel]), m = Int(cmyk[4 * pixel + 1]), y = Int(cmyk[4 * pixel + 2])
      let k = Int(cmyk[4 * pixel + 3])
      out[3 * pixel] = UInt8(k - (((255 - y) * k) >> 8))
      out[3 * pixel + 1] = UInt8(k - (((255 - m) * k) >> 8))
      out[3 * pixel + 2] = UInt8(k - (((255 - c) * k) >> 8))
    }
    return out
  }

  private static func decodePNG(_ bytes: UnsafeRawBufferPointer) throws(ImageError) -> Image {
    var pixels: UnsafeMutablePointer<UInt8>? = nil
    var width: UInt32 = 0, height: UInt32 = 0
    var reason = [CChar](repeating: 0, count: 256)
    let status = fx_png_read_bgr(
      bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count, UInt64(maximumPixels),
      &pixels, &width, &height, &reason, reason.count)
    defer { fx_png_free(pixels) }
    guard status == 0, let pixels else {
      throw ImageError("the PNG could not be decoded: \(Self.reason(reason))")
    }
    let count = Int(width) * Int(height) * 3
    return Image(
      width: Int(width), height: Int(height), channels: 3, pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
  }
}
