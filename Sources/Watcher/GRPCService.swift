import FxWatcherProto
import GRPCCore
import HandlerKit

/// `pb.FxWatcher` over grpc-swift: OpenFx's `Call` plus the byte-safe and streaming methods.
/// Decodes messages, runs the ``Invoker`` and maps failures to gRPC statuses.
struct FxWatcherGRPCService: Pb_FxWatcher.ServiceProtocol {
  let invoker: Invoker

  func call(request: ServerRequest<Pb_Request>, context: ServerContext) async throws -> ServerResponse<Pb_Reply> {
    do {
      var reply = Pb_Reply()
      reply.output = try await invoker.invokeForText(
        Request(request.message), requestID: request.metadata.requestID, method: "Call",
        callerTimeout: request.metadata.callerTimeout)
      return ServerResponse(message: reply)
    } catch {
      throw RPCError(error)
    }
  }

  func callBytes(request: ServerRequest<Pb_Request>, context: ServerContext) async throws -> ServerResponse<Pb_Messages> {
    do {
      let output = try await invoker.invoke(
        Request(request.message), requestID: request.metadata.requestID, method: "CallBytes",
        callerTimeout: request.metadata.callerTimeout)
      return ServerResponse(message: Pb_Messages(output))
    } catch {
      throw RPCError(error)
    }
  }

  func calls(
    request: StreamingServerRequest<Pb_Request>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Pb_Messages> {
    let requestID = request.metadata.requestID
    return replyingToEach(request.messages) { message in
      try await invoker.invoke(Request(message), requestID: requestID, method: "Calls")
    }
  }

  func callStream(
    request: ServerRequest<Pb_Request>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Pb_Messages> {
    StreamingServerResponse { writer in
      try await mapToRPCError {
        try await invoker.invokeStreaming(
          Request(request.message), requestID: request.metadata.requestID, method: "CallStream",
          callerTimeout: request.metadata.callerTimeout
        ) { output in
          try await writer.write(Pb_Messages(output))
        }
      }
      return [:]
    }
  }
}

/// The hosted function's part of OpenFx's gateway (`pb.FxGateway`): `Invoke` and `Invokes` for
/// `Service` = the function's name; any other name is NOT_FOUND.
struct FxGatewayGRPCService: Pb_FxGateway.ServiceProtocol {
  let invoker: Invoker

  func invoke(
    request: ServerRequest<Pb_InvokeServiceRequest>,
    context: ServerContext
  ) async throws -> ServerResponse<Pb_Message> {
    do {
      var reply = Pb_Message()
      reply.msg = try await invoker.invokeForText(
        try hostedRequest(request.message), requestID: request.metadata.requestID, method: "Invoke",
        callerTimeout: request.metadata.callerTimeout)
      return ServerResponse(message: reply)
    } catch {
      throw RPCError(error)
    }
  }

  func invokes(
    request: StreamingServerRequest<Pb_InvokeServiceRequest>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Pb_Messages> {
    let requestID = request.metadata.requestID
    return replyingToEach(request.messages) { message in
      try await invoker.invoke(try hostedRequest(message), requestID: requestID, method: "Invokes")
    }
  }

  /// The request for the hosted function, or NOT_FOUND when `Service` names another one.
  private func hostedRequest(_ message: Pb_InvokeServiceRequest) throws(HandlerError) -> Request {
    guard message.service == invoker.functionName else {
      throw HandlerError(
        .notFound,
        "function \"\(message.service.prefix(128))\" is not served here; this watcher serves \"\(invoker.functionName)\"")
    }
    return Request(input: message.input, info: Info(functionName: message.service, trigger: Trigger(name: "grpc")))
  }
}

/// The standard `grpc.health.v1.Health` service: `""` and the watcher's own services are
/// SERVING once every port accepts and NOT_SERVING from the start of graceful shutdown.
struct HealthGRPCService: Grpc_Health_V1_Health.ServiceProtocol {
  /// The service names a probe may ask about; `""` is the whole server.
  static let knownServices: Set<String> = ["", "pb.FxWatcher", "pb.FxGateway"]

  let status: HealthStatus

  func check(
    request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>,
    context: ServerContext
  ) async throws -> ServerResponse<Grpc_Health_V1_HealthCheckResponse> {
    guard Self.knownServices.contains(request.message.service) else {
      throw RPCError(code: .notFound, message: "unknown service \"\(request.message.service.prefix(128))\"")
    }
    return ServerResponse(message: .init(serving: status.isServing))
  }

  func watch(
    request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Grpc_Health_V1_HealthCheckResponse> {
    let known = Self.knownServices.contains(request.message.service)
    return StreamingServerResponse { writer in
      guard known else {
        var unknown = Grpc_Health_V1_HealthCheckResponse()
        unknown.status = .serviceUnknown
        try await writer.write(unknown)
        // The spec keeps the stream open; the watcher ends it when it drains.
        for await _ in status.observe() {}
        return [:]
      }
      for await serving in status.observe() {
        try await writer.write(.init(serving: serving))
      }
      return [:]
    }
  }
}

extension Grpc_Health_V1_HealthCheckResponse {
  init(serving: Bool) {
    self.init()
    status = serving ? .serving : .notServing
  }
}

extension Pb_Messages {
  /// A byte-safe reply carrying `output` as is.
  init(_ output: Output) {
    self.init()
    self.output = output.bytes
  }
}

extension Request {
  /// The request OpenFx's `pb.Request` describes.
  init(_ message: Pb_Request) {
    let info = message.info
    self.init(
      input: message.input,
      info: Info(
        functionName: info.functionName,
        timeout: info.timeout,
        runtime: info.runtime,
        limits: Resources(memory: info.limits.memory, cpu: info.limits.cpu, gpu: info.limits.gpu),
        trigger: Trigger(name: info.trigger.name, topic: info.trigger.topic, time: info.trigger.time)
      )
    )
  }
}

extension Metadata {
  /// The metadata key that carries a call's request id.
  static let requestIDKey = "x-request-id"

  /// The caller's request id, if it sent one.
  var requestID: String? {
    self[stringValues: Self.requestIDKey].first { _ in true }
  }

  /// The caller's deadline as a timeout (`grpc-timeout`), if it set one.
  var callerTimeout: Duration? {
    self[stringValues: "grpc-timeout"].first { _ in true }.flatMap(GRPCTimeout.parse)
  }
}

/// The `grpc-timeout` header: at most 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
enum GRPCTimeout {
  static func parse(_ text: String) -> Duration? {
    guard let unit = text.last, text.count >= 2, text.count <= 9, let value = Int64(text.dropLast()), value >= 0
    else { return nil }
    switch unit {
    case "H": return .seconds(value * 3600)
    case "M": return .seconds(value * 60)
    case "S": return .seconds(value)
    case "m": return .milliseconds(value)
    case "u": return .microseconds(value)
    case "n": return .nanoseconds(value)
    default: return nil
    }
  }
}

/// A stream with one byte-safe reply per request, in order; the first failure ends it with its
/// status.
func replyingToEach<Message: Sendable>(
  _ messages: RPCAsyncSequence<Message, any Error>,
  _ invoke: @escaping @Sendable (Message) async throws -> Output
) -> StreamingServerResponse<Pb_Messages> {
  StreamingServerResponse { writer in
    for try await message in messages {
      let output = try await mapToRPCError { try await invoke(message) }
      try await writer.write(Pb_Messages(output))
    }
    return [:]
  }
}

/// Runs `body`, turning a ``HandlerError`` it throws into the gRPC status of the same name.
func mapToRPCError<Value>(_ body: () async throws -> Value) async throws -> Value {
  do {
    return try await body()
  } catch let error as HandlerError {
    throw RPCError(error)
  }
}

extension RPCError {
  /// The gRPC status a ``HandlerError`` stands for: same code, same message.
  init(_ error: HandlerError) {
    self.init(code: RPCError.Code(error.code), message: error.message)
  }
}

extension RPCError.Code {
  /// The gRPC code of the same name.
  init(_ code: HandlerError.Code) {
    self = Self.sameNamed.first { $0.handler == code }!.grpc
  }

  /// Every ``HandlerError/Code`` with the gRPC code of the same name.
  static let sameNamed: [(handler: HandlerError.Code, grpc: RPCError.Code)] = [
    (.cancelled, .cancelled), (.unknown, .unknown), (.invalidArgument, .invalidArgument),
    (.deadlineExceeded, .deadlineExceeded), (.notFound, .notFound), (.alreadyExists, .alreadyExists),
    (.permissionDenied, .permissionDenied), (.resourceExhausted, .resourceExhausted),
    (.failedPrecondition, .failedPrecondition), (.aborted, .aborted), (.outOfRange, .outOfRange),
    (.unimplemented, .unimplemented), (.internalError, .internalError), (.unavailable, .unavailable),
    (.dataLoss, .dataLoss), (.unauthenticated, .unauthenticated),
  ]
}

extension HandlerError.Code {
  /// The code of the same name as a gRPC status code (`unknown` for any other).
  package init(_ code: RPCError.Code) {
    self = RPCError.Code.sameNamed.first { $0.grpc == code }?.handler ?? .unknown
  }
}
