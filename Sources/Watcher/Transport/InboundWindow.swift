/// The receiving side of one HTTP/2 flow-control window, a stream's or the connection's: when to
/// send WINDOW_UPDATE, and how much it gives back.
///
/// NIOHTTP2 keeps the window's size and says when it changes; this decides the updates. Once the
/// window is down to half its target or less, one update brings it back to the target, so a
/// stream of DATA frames costs one WINDOW_UPDATE per half window rather than one per frame.
///
/// Bytes that are *held* (received, but waiting for a handler that is behind) are not given back
/// until they are released: the window shrinks by them, and flow control stops a sender that
/// outruns its handler instead of the server buffering without bound.
struct InboundWindow {
  /// The size the window is brought back to, in bytes.
  let target: Int
  /// The window's size as NIOHTTP2 last reported it; `nil` until it first does.
  private var size: Int?
  /// Bytes received but not yet handed on.
  private(set) var held = 0

  init(target: Int) {
    self.target = target
  }

  /// The window is now `size` bytes (after DATA arrived or an update went out): the increment to
  /// send, if one is due.
  mutating func sizeChanged(to size: Int) -> Int? {
    self.size = size
    return increment()
  }

  /// `SETTINGS_INITIAL_WINDOW_SIZE` changed by `delta` (this server's own settings, acknowledged),
  /// which moves every stream's window by as much: the increment to send, if one is due.
  mutating func initialSizeChanged(by delta: Int) -> Int? {
    guard let size else { return nil }
    return sizeChanged(to: size + delta)
  }

  /// Keeps `bytes` that just arrived from being given back until ``releaseHeld()``.
  mutating func hold(_ bytes: Int) {
    held += bytes
  }

  /// Gives back every held byte: the increment to send, if one is due.
  mutating func releaseHeld() -> Int? {
    held = 0
    return increment()
  }

  /// What brings the window back to the target once it is down to half of it or less, counting
  /// held bytes as not received. Never more than HTTP/2's largest increment (2³¹ − 1).
  private func increment() -> Int? {
    guard let size else { return nil }
    let counted = size + held
    guard counted <= target / 2 else { return nil }
    return min(target - counted, Int(Int32.max))
  }
}
