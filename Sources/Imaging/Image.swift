/// An 8-bit image laid out as OpenCV lays out a `Mat`: rows from the top, pixels left to
/// right, channels interleaved in BGR order (3 channels) or a single gray channel.
public struct Image: Sendable, Equatable {
  /// Width in pixels.
  public let width: Int
  /// Height in pixels.
  public let height: Int
  /// 3 for BGR, 1 for gray.
  public let channels: Int
  /// `width × height × channels` bytes.
  public var pixels: [UInt8]

  /// Creates an image from its pixels; `pixels` must hold `width × height × channels` bytes.
  public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
    precondition(channels == 1 || channels == 3, "an image has 1 or 3 channels")
    precondition(pixels.count == width * height * channels, "pixels do not match the size")
    self.width = width
    self.height = height
    self.channels = channels
    self.pixels = pixels
  }
}

/// Why an image could not be read or written.
public struct ImageError: Error, Equatable, CustomStringConvertible {
  /// What went wrong, for the caller.
  public let message: String

  init(_ message: String) {
    self.message = message
  }

  public var description: String { message }
}
