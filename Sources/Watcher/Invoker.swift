import HandlerKit
import Logging
import SettingValues

/// The invocation pipeline, independent of any transport: admits the call (drain state,
/// in-flight limit, size limit), works out its deadline, builds the ``Context``, runs the
/// handler against the deadline, turns every failure into a ``HandlerError`` and logs one
/// line per call at debug.
///
/// A transport decodes its frames into a ``Request``, calls ``invoke(_:requestID:method:callerTimeout:)``
/// (or the streaming variant), and encodes the ``Output`` or maps the ``HandlerError`` to its
/// own status; nothing here knows about gRPC.
package struct Invoker: Sendable {
  /// The hosted handler.
  let handler: any Handler
  /// The function's name when the caller sends none.
  let functionName: String
  /// The watcher's logger; each call's context gets a copy carrying its request id.
  let logger: Logger
  /// The bound on a call when nothing shorter applies; `nil` for none.
  let execTimeout: Duration?
  /// The largest input or output, in bytes.
  let maxMessageBytes: Int
  /// Admission: in-flight limit and drain state.
  let gate: InvocationGate
  /// What the handler's ``Context/mesh`` calls other functions with.
  let mesh: (any MeshClient)?
  /// Where each call is counted, when metrics are served.
  let metrics: CallMetrics?

  /// The longest caller-supplied request id that is kept; longer ones are replaced.
  static let maximumRequestIDLength = 128

  init(
    handler: any Handler,
    functionName: String,
    logger: Logger,
    execTimeout: Duration? = nil,
    maxMessageBytes: Int = .max,
    gate: InvocationGate = InvocationGate(limit: 0),
    mesh: (any MeshClient)? = nil,
    metrics: CallMetrics? = nil
  ) {
    self.handler = handler
    self.functionName = functionName
    self.logger = logger
    self.execTimeout = execTimeout
    self.maxMessageBytes = maxMessageBytes
    self.gate = gate
    self.mesh = mesh
    self.metrics = metrics
  }

  /// An invoker with the limits of `configuration` and a mesh client for its `MESH_ADDRESS`, as
  /// the watcher builds it, for callers without sockets (the test kit).
  package static func inProcess(
    handler: any Handler, functionName: String, configuration: WatcherConfiguration, logger: Logger
  ) -> Invoker {
    Invoker(
      handler: handler,
      functionName: configuration.functionName ?? functionName,
      logger: logger,
      execTimeout: configuration.execTimeout,
      maxMessageBytes: configuration.maxMessageBytes,
      gate: InvocationGate(limit: configuration.maxInFlight),
      mesh: GRPCMeshClient(
        address: MeshAddress(template: configuration.meshAddressTemplate, namespace: configuration.meshNamespace))
    )
  }

  /// Runs one call and returns the handler's output.
  package func invoke(
    _ request: Request,
    requestID: String?,
    method: String,
    callerTimeout: Duration? = nil
  ) async throws(HandlerError) -> Output {
    try await run(request, requestID: requestID, method: method, callerTimeout: callerTimeout) { context in
      try await checkedOutput(request, context)
    }
  }

  /// Runs one call whose reply must be text, as OpenFx's `Call` (a proto3 `string`) requires.
  ///
  /// Output that is not valid UTF-8 is an `internalError`, never repaired text.
  package func invokeForText(
    _ request: Request,
    requestID: String?,
    method: String,
    callerTimeout: Duration? = nil
  ) async throws(HandlerError) -> String {
    try await run(request, requestID: requestID, method: method, callerTimeout: callerTimeout) { context in
      let output = try await checkedOutput(request, context)
      guard let text = output.text else {
        throw HandlerError(
          .internalError,
          "the handler's output (\(output.byteCount) bytes) is not valid UTF-8, and \(method) replies with a string; use CallBytes for binary output"
        )
      }
      return text
    }
  }

  /// Runs one call and hands each output to `write` as the handler produces it: every output
  /// of a ``StreamingHandler``, or the one output of any other handler.
  package func invokeStreaming(
    _ request: Request,
    requestID: String?,
    method: String,
    callerTimeout: Duration? = nil,
    write: @escaping @Sendable (Output) async throws -> Void
  ) async throws(HandlerError) {
    let checkedWrite: @Sendable (Output) async throws -> Void = { output in
      try checkOutputSize(output)
      try await write(output)
    }
    try await run(request, requestID: requestID, method: method, callerTimeout: callerTimeout) { context in
      if let streaming = handler as? any StreamingHandler {
        try await streaming.handle(request, context: context, writer: OutputWriter(checkedWrite))
      } else {
        try await checkedWrite(try await handler.handle(request, context: context))
      }
    }
  }

  private func run<Value: Sendable>(
    _ request: Request,
    requestID: String?,
    method: String,
    callerTimeout: Duration?,
    body: @escaping @Sendable (Context) async throws -> Value
  ) async throws(HandlerError) -> Value {
    let start = ContinuousClock.now
    let context: Context
    let limit: (duration: Duration, source: String)?
    do throws(HandlerError) {
      guard request.input.count <= maxMessageBytes else {
        throw HandlerError(
          .resourceExhausted,
          "the input (\(request.input.count) bytes) is larger than MAX_MESSAGE_BYTES (\(maxMessageBytes))")
      }
      limit = try timeLimit(infoTimeout: request.info.timeout, callerTimeout: callerTimeout)
      context = Context(
        requestID: requestID.flatMap(Self.acceptableRequestID) ?? Context.makeRequestID(),
        functionName: request.info.functionName.isEmpty ? functionName : request.info.functionName,
        deadline: limit.map { start + $0.duration },
        logger: logger,
        mesh: mesh
      )
      try admit()
    } catch {
      logCall(Context(requestID: requestID ?? "-", logger: logger), method: method, start: start, outcome: error.code.rawValue)
      throw error
    }

    do {
      let value: Value
      if let deadline = context.deadline {
        value = try await raceDeadline(deadline, onWorkEnded: gate.leave) {
          try await body(context)
        }
      } else {
        defer { gate.leave() }
        value = try await body(context)
      }
      logCall(context, method: method, start: start, outcome: "ok")
      return value
    } catch {
      let failure =
        if error is DeadlineExceeded, let limit {
          HandlerError(.deadlineExceeded, "the call did not finish within its timeout (\(limit.source) \(limit.duration))")
        } else {
          HandlerError(converting: error)
        }
      logCall(context, method: method, start: start, outcome: failure.code.rawValue)
      if failure.code == .unknown || failure.code == .internalError {
        context.logger.warning("handler failed", metadata: ["error": "\(failure.message)"])
      }
      throw failure
    }
  }

  /// Takes a slot in the gate or refuses the call at once.
  private func admit() throws(HandlerError) {
    do {
      try gate.enter()
    } catch {
      switch error {
      case .draining:
        throw HandlerError(.unavailable, "the watcher is shutting down; retry on another instance")
      case .overLimit(let limit):
        throw HandlerError(.resourceExhausted, "\(limit) calls are in flight, the limit (MAX_INFLIGHT); retry later")
      }
    }
  }

  /// The shortest of `Info.Timeout`, the caller's deadline and `EXEC_TIMEOUT`, with where it came
  /// from; `nil` when none applies. A malformed `Info.Timeout` is `invalidArgument`.
  func timeLimit(infoTimeout: String, callerTimeout: Duration?) throws(HandlerError) -> (duration: Duration, source: String)? {
    var candidates: [(duration: Duration, source: String)] = []
    if !infoTimeout.isEmpty {
      guard let parsed = GoDuration.parse(infoTimeout) else {
        throw HandlerError(
          .invalidArgument, "Info.Timeout \"\(infoTimeout.prefix(64))\" is not a duration such as 30s, 1m30s or 30")
      }
      if parsed > .zero { candidates.append((parsed, "Info.Timeout")) }
    }
    if let callerTimeout { candidates.append((max(callerTimeout, .zero), "the caller's deadline")) }
    if let execTimeout { candidates.append((execTimeout, "EXEC_TIMEOUT")) }
    return candidates.min { $0.duration < $1.duration }
  }

  /// The handler's output for `request`, refused when it is over the size limit.
  private func checkedOutput(_ request: Request, _ context: Context) async throws -> Output {
    let output = try await handler.handle(request, context: context)
    try checkOutputSize(output)
    return output
  }

  private func checkOutputSize(_ output: Output) throws(HandlerError) {
    guard output.byteCount <= maxMessageBytes else {
      throw HandlerError(
        .resourceExhausted,
        "the handler's output (\(output.byteCount) bytes) is larger than MAX_MESSAGE_BYTES (\(maxMessageBytes))")
    }
  }

  /// Counts the call in the metrics and logs it at debug.
  private func logCall(_ context: Context, method: String, start: ContinuousClock.Instant, outcome: String) {
    let debug = context.logger.logLevel <= .debug
    guard debug || metrics != nil else { return }
    let elapsed = ContinuousClock.now - start
    metrics?.record(method: method, status: outcome, duration: elapsed)
    guard debug else { return }
    context.logger.debug(
      "call",
      metadata: [
        "method": "\(method)",
        "status": "\(outcome)",
        "duration-ms": "\(Double(elapsed.nanoseconds) / 1e6)",
      ]
    )
  }

  /// `id` when it is a reasonable request id (1–128 printable ASCII characters), else `nil`.
  static func acceptableRequestID(_ id: String) -> String? {
    guard !id.isEmpty, id.utf8.count <= maximumRequestIDLength,
      id.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
    else { return nil }
    return id
  }
}
