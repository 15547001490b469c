import FxWatcherMessages
import HandlerKit
import NIOCore
import SwiftProtobuf

/// What the caller sent besides the messages (the request id and its deadline), and who keeps
/// the call's deadline.
struct CallMetadata: Sendable {
  /// `x-request-id`, if sent.
  var requestID: String?
  /// `grpc-timeout`, if sent and well formed.
  var callerTimeout: Duration?
  /// The stream that ends the call at its deadline.
  var deadlineKeeper: DeadlineKeeper = .race
}

/// One gRPC method of the watcher, independent of HTTP/2: what it does with request messages
/// (protobuf bytes, unframed) and the framed replies it produces.
enum GRPCMethod: Sendable {
  /// Hands each framed reply to the transport; returns once it is written or queued.
  typealias ReplyWriter = @Sendable (ByteBuffer) async throws -> Void

  /// One request message, one framed reply.
  case unary(@Sendable (ByteBuffer, CallMetadata) async throws -> ByteBuffer)
  /// A stream of request messages, one framed reply each, in order.
  case eachRequest(@Sendable (ByteBuffer, CallMetadata) async throws -> ByteBuffer)
  /// One request message, any number of replies, written as they are produced.
  case serverStreaming(@Sendable (ByteBuffer, CallMetadata, @escaping ReplyWriter) async throws -> Void)

  /// The service names a health probe may ask about; `""` is the whole server.
  static let healthServices: Set<String> = ["", "pb.FxWatcher", "pb.FxGateway"]

  /// Whether the caller sends a stream of messages rather than exactly one.
  var streamsRequests: Bool {
    if case .eachRequest = self { true } else { false }
  }

  /// The watcher's methods by path (`/pb.FxWatcher/Call`): `pb.FxWatcher`, the hosted
  /// function's part of `pb.FxGateway` and `grpc.health.v1.Health`.
  static func watcherMethods(invoker: Invoker, health: HealthStatus) -> [String: GRPCMethod] {
    let allocator = ByteBufferAllocator()
    let gateway = GatewayRequests(functionName: invoker.functionName)
    return [
      "/pb.FxWatcher/Call": .unary { message, call in
        let request = try SharedInput.request(message)
        let output = try await invoker.invokeForText(
          request, requestID: call.requestID, method: "Call",
          callerTimeout: call.callerTimeout, deadlineKeeper: call.deadlineKeeper)
        return GRPCFrame.field1Message(output, allocator: allocator)
      },
      "/pb.FxWatcher/CallBytes": .unary { message, call in
        let request = try SharedInput.request(message)
        let output = try await invoker.invoke(
          request, requestID: call.requestID, method: "CallBytes",
          callerTimeout: call.callerTimeout, deadlineKeeper: call.deadlineKeeper)
        return GRPCFrame.field1Message(output, allocator: allocator)
      },
      "/pb.FxWatcher/Calls": .eachRequest { message, call in
        let request = try SharedInput.request(message)
        let output = try await invoker.invoke(
          request, requestID: call.requestID, method: "Calls",
          deadlineKeeper: call.deadlineKeeper)
        return GRPCFrame.field1Message(output, allocator: allocator)
      },
      "/pb.FxWatcher/CallStream": .serverStreaming { message, call, write in
        let request = try SharedInput.request(message)
        try await invoker.invokeStreaming(
          request, requestID: call.requestID, method: "CallStream", callerTimeout: call.callerTimeout,
          deadlineKeeper: call.deadlineKeeper
        ) { output in
          try await write(GRPCFrame.field1Message(output, allocator: allocator))
        }
      },
      "/pb.FxGateway/Invoke": .unary { message, call in
        let output = try await invoker.invokeForText(
          try gateway.request(try decode(Pb_InvokeServiceRequest.self, message)), requestID: call.requestID,
          method: "Invoke", callerTimeout: call.callerTimeout, deadlineKeeper: call.deadlineKeeper)
        return GRPCFrame.field1Message(output, allocator: allocator)
      },
      "/pb.FxGateway/Invokes": .eachRequest { message, call in
        let output = try await invoker.invoke(
          try gateway.request(try decode(Pb_InvokeServiceRequest.self, message)), requestID: call.requestID,
          method: "Invokes", deadlineKeeper: call.deadlineKeeper)
        return GRPCFrame.field1Message(output, allocator: allocator)
      },
      "/grpc.health.v1.Health/Check": .unary { message, _ in
        let service = try decode(Grpc_Health_V1_HealthCheckRequest.self, message).service
        guard healthServices.contains(service) else {
          throw HandlerError(.notFound, "unknown service \"\(service.prefix(128))\"")
        }
        return try healthReply(.init(serving: health.isServing), allocator: allocator)
      },
      "/grpc.health.v1.Health/Watch": .serverStreaming { message, _, write in
        let service = try decode(Grpc_Health_V1_HealthCheckRequest.self, message).service
        guard healthServices.contains(service) else {
          var unknown = Grpc_Health_V1_HealthCheckResponse()
          unknown.status = .serviceUnknown
          try await write(try healthReply(unknown, allocator: allocator))
          // The spec keeps the stream open; the watcher ends it when it drains.
          for await _ in health.observe() {}
          return
        }
        for await serving in health.observe() {
          try await write(try healthReply(.init(serving: serving), allocator: allocator))
        }
      },
    ]
  }

  /// Decodes a request message; bytes that are not one are `invalidArgument`.
  static func decode<Message: SwiftProtobuf.Message>(_ type: Message.Type, _ buffer: ByteBuffer) throws -> Message {
    do {
      // Decoding copies what it keeps, so it reads the buffer in place.
      return try Message(serializedBytes: ProtobufBytes(buffer: buffer))
    } catch {
      throw HandlerError(
        .invalidArgument, "the request is not a valid \(Message.protoMessageName) message (\(error))")
    }
  }

  private static func healthReply(
    _ response: Grpc_Health_V1_HealthCheckResponse, allocator: ByteBufferAllocator
  ) throws -> ByteBuffer {
    GRPCFrame.message(try response.serializedBytes() as [UInt8], allocator: allocator)
  }
}

/// Turns `pb.FxGateway` requests into requests for the hosted function; a request for another
/// function is NOT_FOUND.
struct GatewayRequests: Sendable {
  /// The hosted function's name.
  let functionName: String

  func request(_ message: Pb_InvokeServiceRequest) throws(HandlerError) -> Request {
    guard message.service == functionName else {
      throw HandlerError(
        .notFound,
        "function \"\(message.service.prefix(128))\" is not served here; this watcher serves \"\(functionName)\"")
    }
    return Request(input: message.input, info: Info(functionName: message.service, trigger: Trigger(name: "grpc")))
  }
}

/// A `ByteBuffer`'s readable bytes as swift-protobuf reads them: decoding from it needs no copy
/// and no `Data`.
struct ProtobufBytes: SwiftProtobufContiguousBytes {
  var buffer: ByteBuffer

  init(buffer: ByteBuffer) {
    self.buffer = buffer
  }

  init(repeating byte: UInt8, count: Int) {
    buffer = ByteBuffer(repeating: byte, count: count)
  }

  init<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
    buffer = ByteBuffer(bytes: bytes)
  }

  var count: Int { buffer.readableBytes }

  func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
    try buffer.withUnsafeReadableBytes(body)
  }

  mutating func withUnsafeMutableBytes<Result>(_ body: (UnsafeMutableRawBufferPointer) throws -> Result) rethrows -> Result {
    try buffer.withUnsafeMutableReadableBytes(body)
  }
}
