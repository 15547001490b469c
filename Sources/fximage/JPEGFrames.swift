/// The JPEG images stored one after another in a byte stream: a Motion-JPEG video (AVI, MOV or
/// raw `.mjpeg`, as `ffmpeg -c:v mjpeg` and OpenCV's `MJPG` writer make them) or a pipe of JPEGs.
///
/// Each frame is found by walking its marker segments (so an EXIF thumbnail inside does not end
/// it early) and then its entropy-coded data up to the end-of-image marker.
enum JPEGFrames {
  static func split(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
    var frames: [ArraySlice<UInt8>] = []
    var position = 0
    while let start = nextStart(in: bytes, from: position) {
      guard let end = endOfImage(in: bytes, start: start) else { break }
      frames.append(bytes[start..<end])
      position = end
    }
    return frames
  }

  private static func nextStart(in bytes: [UInt8], from position: Int) -> Int? {
    var index = position
    while index + 2 < bytes.count {
      if bytes[index] == 0xFF && bytes[index + 1] == 0xD8 && bytes[index + 2] == 0xFF { return index }
      index += 1
    }
    return nil
  }

  /// The index just past the frame's end-of-image marker, or `nil` if it is cut off.
  private static func endOfImage(in bytes: [UInt8], start: Int) -> Int? {
    var index = start + 2
    // Marker segments up to the image data.
    while index + 4 <= bytes.count {
      guard bytes[index] == 0xFF else { return nil }
      let marker = bytes[index + 1]
      if marker == 0xFF { index += 1; continue }
      if marker == 0xD9 { return index + 2 }
      let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
      index += 2 + length
      if marker == 0xDA { break }
    }
    // Entropy-coded data: a marker is 0xFF not followed by 0x00 or a restart marker.
    while index + 1 < bytes.count {
      if bytes[index] == 0xFF {
        let next = bytes[index + 1]
        if next == 0xD9 { return index + 2 }
        if next != 0x00 && !(0xD0...0xD7).contains(next) && next != 0xFF {
          // Another scan (progressive JPEG): skip its header segment and go on.
          guard index + 4 <= bytes.count else { return nil }
          let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
          index += 2 + length
          continue
        }
      }
      index += 1
    }
    return nil
  }
}
