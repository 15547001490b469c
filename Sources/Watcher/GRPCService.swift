import FxWatcherProto
import GRPCCore
import HandlerKit

/// `pb.FxWatcher` over grpc-swift: decodes OpenFx's messages, runs the ``Invoker`` and maps
/// failures to gRPC statuses. The only place where the invocation pipeline meets gRPC types.
struct FxWatcherGRPCService: Pb_FxWatcher.ServiceProtocol {
  /// The metadata key that carries a call's request id, both ways.
  static let requestIDKey = "x-request-id"

  let invoker: Invoker

  func call(
    request: ServerRequest<Pb_Request>,
    context: ServerContext
  ) async throws -> ServerResponse<Pb_Reply> {
    let requestID = request.metadata[stringValues: Self.requestIDKey].first { _ in true }
    do {
      var reply = Pb_Reply()
      reply.output = try await invoker.invokeForText(
        Request(request.message),
        requestID: requestID,
        method: "Call"
      )
      return ServerResponse(message: reply)
    } catch {
      throw RPCError(error)
    }
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

extension RPCError {
  /// The gRPC status a ``HandlerError`` stands for: same code, same message.
  init(_ error: HandlerError) {
    self.init(code: RPCError.Code(error.code), message: error.message)
  }
}

extension RPCError.Code {
  /// The gRPC code of the same name.
  init(_ code: HandlerError.Code) {
    switch code {
    case .cancelled: self = .cancelled
    case .unknown: self = .unknown
    case .invalidArgument: self = .invalidArgument
    case .deadlineExceeded: self = .deadlineExceeded
    case .notFound: self = .notFound
    case .alreadyExists: self = .alreadyExists
    case .permissionDenied: self = .permissionDenied
    case .resourceExhausted: self = .resourceExhausted
    case .failedPrecondition: self = .failedPrecondition
    case .aborted: self = .aborted
    case .outOfRange: self = .outOfRange
    case .unimplemented: self = .unimplemented
    case .internalError: self = .internalError
    case .unavailable: self = .unavailable
    case .dataLoss: self = .dataLoss
    case .unauthenticated: self = .unauthenticated
    }
  }
}
