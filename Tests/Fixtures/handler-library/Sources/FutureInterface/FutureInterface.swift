/// What a library built against a later HandlerKit answers: its own interface version, no
/// handlers.
@_cdecl("fxwatcher_handler_library")
public func handlerLibrary(_ handshake: UnsafeMutablePointer<UInt32>) -> UnsafeMutableRawPointer? {
  handshake[1] = 999
  return nil
}
