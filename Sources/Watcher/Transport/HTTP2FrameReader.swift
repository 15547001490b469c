import NIOCore

/// Cuts the bytes a client sends on one connection into HTTP/2 frames: first the client
/// preface, then whole frames, each handed on as its header and a slice of what was read (no
/// copy). The start of a frame not yet whole waits for the next read.
struct HTTP2FrameReader {
  /// The start of a frame not yet whole, kept until the next read.
  private var unread: ByteBuffer?
  private var prefaceRead = false

  /// Reads `bytes`, after what an earlier read left, and hands `body` every whole frame in
  /// them, until it returns `false`. Throws a ``HTTP2Wire/ConnectionError`` for bytes that are not
  /// HTTP/2 (a wrong preface, a frame over the default `SETTINGS_MAX_FRAME_SIZE`, which this
  /// server never raises) and whatever `body` throws.
  mutating func read(
    _ bytes: ByteBuffer, _ body: (HTTP2Wire.FrameHeader, ByteBuffer) throws -> Bool
  ) throws {
    var bytes = bytes
    if var earlier = unread {
      unread = nil
      earlier.writeBuffer(&bytes)
      bytes = earlier
    }
    defer { if bytes.readableBytes > 0 { unread = bytes } }
    if !prefaceRead {
      let preface = HTTP2Wire.clientPreface
      let readable = min(bytes.readableBytes, preface.count)
      guard bytes.readableBytesView.prefix(readable).elementsEqual(preface.prefix(readable)) else {
        throw HTTP2Wire.ConnectionError(.protocolError, "the connection does not start with HTTP/2's preface")
      }
      guard readable == preface.count else { return }
      bytes.moveReaderIndex(forwardBy: preface.count)
      prefaceRead = true
    }
    while let header = bytes.peekHTTP2FrameHeader() {
      guard header.length <= HTTP2Wire.defaultMaxFrameSize else {
        throw HTTP2Wire.ConnectionError(.frameSizeError, "a frame of \(header.length) bytes")
      }
      let frameLength = HTTP2Wire.frameHeaderLength + header.length
      guard bytes.readableBytes >= frameLength else {
        // Only the frame's start is kept (a copy once the read's other frames are handed on).
        bytes.reserveCapacity(minimumWritableBytes: frameLength - bytes.readableBytes)
        return
      }
      bytes.moveReaderIndex(forwardBy: HTTP2Wire.frameHeaderLength)
      guard try body(header, bytes.readSlice(length: header.length)!) else { return }
    }
  }
}
