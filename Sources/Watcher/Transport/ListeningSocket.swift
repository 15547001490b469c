import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP port bound and listening before the event loops exist: from then on the kernel
/// completes callers' connections and keeps what they send until the watcher accepts them,
/// where a port not yet bound would refuse them (and a gRPC client would back off for a second
/// before trying again). ``HTTP2Endpoint`` takes its descriptor over.
///
/// Owns the descriptor until ``take()``; one never taken is closed when this is let go.
final class ListeningSocket: Sendable {
  /// The listening socket's descriptor.
  let descriptor: CInt
  private let taken = Atomic(false)

  /// Binds `host:port` (an IP address; a name would need the resolver) and listens with
  /// `backlog`, as NIO's server bootstrap does (`SO_REUSEADDR`, close-on-exec); `nil` when
  /// the host is a name or any step fails: the endpoint then binds the port itself, and
  /// reports why it could not.
  init?(host: String, port: Int, backlog: Int32) {
    guard let address = try? SocketAddress(ipAddress: host, port: port) else { return nil }
    let family = address.protocol.rawValue
    #if canImport(Darwin)
    let descriptor = socket(family, SOCK_STREAM, 0)
    #else
    let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    #endif
    guard descriptor >= 0 else { return nil }
    var reuse: CInt = 1
    let listening =
      setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<CInt>.size)) == 0
      && address.withSockAddr { bind(descriptor, $0, socklen_t($1)) } == 0
      && listen(descriptor, backlog) == 0
    guard listening else {
      close(descriptor)
      return nil
    }
    self.descriptor = descriptor
  }

  /// Hands the descriptor over (its new owner closes it); `nil` if it was handed over before.
  func take() -> CInt? {
    taken.exchange(true, ordering: .acquiringAndReleasing) ? nil : descriptor
  }

  /// Sets the length of the queue of connections not yet accepted, again: NIO listens once
  /// more, with its own default, when it takes a bound socket over.
  static func setBacklog(_ backlog: Int32, of descriptor: CInt) {
    _ = listen(descriptor, backlog)
  }

  deinit {
    if !taken.load(ordering: .acquiring) { close(descriptor) }
  }
}

/// The watcher's gRPC ports, bound ahead of the rest of a start.
struct ListeningSockets: Sendable {
  /// The gateway port's socket, if it was bound.
  let gateway: ListeningSocket?
  /// The mesh port's socket, if it was bound.
  let mesh: ListeningSocket?

  /// None: each endpoint binds its port itself.
  init() {
    gateway = nil
    mesh = nil
  }

  /// Binds the gateway and mesh ports of `configuration`; a port that cannot be bound this way
  /// is left to its endpoint (see ``ListeningSocket/init(host:port:backlog:)``).
  init(configuration: WatcherConfiguration) {
    gateway = ListeningSocket(host: configuration.host, port: configuration.port, backlog: HTTP2Endpoint.backlog)
    mesh = ListeningSocket(host: configuration.host, port: configuration.meshPort, backlog: HTTP2Endpoint.backlog)
  }
}
