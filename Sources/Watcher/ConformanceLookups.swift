import Logging
import NIOCore
import NIOEmbedded

/// Asks the Swift runtime, while the process starts, the protocol conformance questions that
/// the way to a bound port and a first answered call would otherwise ask on it.
///
/// The runtime answers each question (does this type conform to that protocol?) once per
/// process, the first time by going over every protocol conformance record in the binary: 6,000
/// in a function, some 50 µs a question. NIO asks two of every channel handler type it adds to a
/// pipeline (does it handle inbound events, outbound ones?), and a bound port with its first
/// connection add six types; the log handler's metadata asks one. Asked by the thread that
/// made the event loops, while ``FxWatcher`` takes the ports over and warms up, most are
/// answered from the runtime's cache by the time those paths ask them.
enum ConformanceLookups {
  /// The handler types of the watcher's connections and of its warm-up call.
  static var handlerTypes: [Any.Type] {
    [HTTP2ServerConnection.self] + WarmUpCall.handlerTypes.map { $0 as Any.Type }
  }

  /// NIOPosix's own types on that way, named by their mangled names since they are internal to
  /// it: the handler a bound port's pipeline gets, then the channels of a bound port and of a
  /// connection, whose generic superclasses' requirements are conformance questions too.
  static let internalTypeNames = (
    handlers: ["8NIOPosix15ServerBootstrapC13AcceptHandlerC"],
    channels: ["8NIOPosix19ServerSocketChannelC", "8NIOPosix13SocketChannelC"]
  )

  /// Asks them, the earliest needed first: the log handler's, NIO's head and tail handlers' (every
  /// pipeline has them, a bound port's too), the channels', then ``handlerTypes``'.
  static func lookUpAhead() {
    var logHandler = StreamLogHandler.standardError(label: "")
    logHandler[metadataKey: "lookup"] = "ahead"
    _ = try? EmbeddedChannel().finish()
    // A type's metadata is made whole on its first use, its superclass's requirements checked.
    for name in internalTypeNames.channels { _ = _typeByName(name) }
    for type in internalTypeNames.handlers.compactMap(_typeByName) + handlerTypes {
      _ = handlesInbound(type)
      _ = handlesOutbound(type)
    }
  }

  // Not inlined: with a type the compiler knows, it would answer the question itself.
  @inline(never)
  static func handlesInbound(_ type: Any.Type) -> Bool {
    type is any _ChannelInboundHandler.Type
  }

  @inline(never)
  static func handlesOutbound(_ type: Any.Type) -> Bool {
    type is any _ChannelOutboundHandler.Type
  }
}
