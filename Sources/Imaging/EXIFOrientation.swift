/// The EXIF orientation (tag 0x0112 of IFD0) of a JPEG (the first `Exif` APP1 segment before the
/// image data) or a PNG (its `eXIf` chunk), read with the byte order it declares. 1 (as stored)
/// when absent or malformed.
enum EXIFOrientation {
  static func read(png bytes: UnsafeRawBufferPointer) -> Int {
    var offset = 8
    while offset + 12 <= bytes.count {
      let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8
        | Int(bytes[offset + 3])
      let type = bytes[(offset + 4)..<(offset + 8)]
      guard length >= 0, offset + 12 + length <= bytes.count else { break }
      if type.elementsEqual("eXIf".utf8) {
        return orientation(inTIFF: UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<(offset + 8 + length)])) ?? 1
      }
      if type.elementsEqual("IEND".utf8) { break }
      offset += 12 + length
    }
    return 1
  }

  static func read(jpeg bytes: UnsafeRawBufferPointer) -> Int {
    guard bytes.count > 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return 1 }
    var offset = 2
    while offset + 4 <= bytes.count, bytes[offset] == 0xFF {
      let marker = bytes[offset + 1]
      if marker == 0xDA || marker == 0xD9 { break }  // image data or its end: no more metadata
      if marker == 0xFF || (0xD0...0xD7).contains(marker) || marker == 0x01 {
        offset += marker == 0xFF ? 1 : 2
        continue
      }
      let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
      guard length >= 2, offset + 2 + length <= bytes.count else { break }
      let payload = UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 2 + length)])
      if marker == 0xE1, let orientation = orientation(inExif: payload) { return orientation }
      offset += 2 + length
    }
    return 1
  }

  /// The orientation in an APP1 payload that starts `Exif\0\0`, if it has one.
  private static func orientation(inExif payload: UnsafeRawBufferPointer) -> Int? {
    let header: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]
    guard payload.count >= 14, payload.prefix(6).elementsEqual(header) else { return nil }
    return orientation(inTIFF: UnsafeRawBufferPointer(rebasing: payload[6...]))
  }

  /// The orientation in a TIFF structure (the body of EXIF), if it has one.
  private static func orientation(inTIFF tiff: UnsafeRawBufferPointer) -> Int? {
    guard tiff.count >= 8 else { return nil }
    let little: Bool
    switch (tiff[0], tiff[1]) {
    case (0x49, 0x49): little = true
    case (0x4D, 0x4D): little = false
    default: return nil
    }
    func u16(_ at: Int) -> Int? {
      guard at >= 0, at + 2 <= tiff.count else { return nil }
      return little ? Int(tiff[at]) | Int(tiff[at + 1]) << 8 : Int(tiff[at]) << 8 | Int(tiff[at + 1])
    }
    func u32(_ at: Int) -> Int? {
      guard let high = u16(little ? at + 2 : at), let low = u16(little ? at : at + 2) else { return nil }
      return high << 16 | low
    }
    guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
    for entry in 0..<count {
      let at = ifd + 2 + entry * 12
      guard let tag = u16(at) else { return nil }
      if tag == 0x0112 {
        guard u16(at + 2) == 3, let value = u16(at + 8) else { return nil }
        return value
      }
    }
    return nil
  }
}
