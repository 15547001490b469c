/// The receiving side of one HTTP/2 flow-control window, a stream's or the connection's: when to
/// send WINDOW_UPDATE, and how much it gives back.
///
/// The connection keeps the window's size and says when it changes; this decides the updates. Once the
/// window is down to half its target or less, one update brings it back to the target, so a
/// stream of DATA frames costs one WINDOW_UPDATE per half window rather than one per frame. An
/// update counts as given from when it is asked for: the DATA frames read in the same loop tick,
/// before it is written, do not ask for it again (which let a sender run far past the window).
///
/// Bytes that are *held* (received, but waiting for a handler that is behind) are not given back
/// until they are released: the window shrinks by them, and flow control stops a sender that
/// outruns its handler instead of the server buffering without bound.
struct InboundWindow {
  /// The size the window is brought back to, in bytes.
  let target: Int
  /// The window's size as the connection last reported it; `nil` until it first does.
  private var size: Int?
  /// Bytes received but not yet handed on.
  private(set) var held = 0
  /// Increments asked for whose WINDOW_UPDATE is not written yet: the reported size leaves them out,
  /// so DATA arriving meanwhile must not ask for them again.
  private var unwritten = 0

  init(target: Int) {
    self.target = target
  }

  /// The window is now `size` bytes (after DATA arrived or an update went out): the increment to
  /// send, if one is due.
  mutating func sizeChanged(to size: Int) -> Int? {
    self.size = size
    return increment()
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

  /// The WINDOW_UPDATE of `written`, an increment this asked for, is written, so the window is
  /// that much larger: the increment to send, if one is due.
  mutating func updateWritten(_ written: Int) -> Int? {
    unwritten -= written
    size = size.map { $0 + written }
    return increment()
  }

  /// What brings the window back to the target once it is down to half of it or less, counting
  /// held bytes as not received and increments not yet written as given. Never more than HTTP/2's
  /// largest increment (2³¹ − 1). The caller sends it and reports it with ``updateWritten(_:)``.
  private mutating func increment() -> Int? {
    guard let size else { return nil }
    let counted = size + held + unwritten
    guard counted <= target / 2 else { return nil }
    let increment = min(target - counted, Int(Int32.max))
    unwritten += increment
    return increment
  }
}
