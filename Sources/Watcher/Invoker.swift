import HandlerKit
import Logging
import SettingValues

/// Who makes a call's deadline hold while its handler runs.
package enum DeadlineKeeper: Sendable {
  /// The invoker: the handler runs in a task of its own, raced against a timer, and the call
  /// fails at its deadline even if the handler ignores cancellation. For callers without a
  /// transport (the test kit).
  case race
  /// The transport, told the deadline and the error to end the call with: at the deadline it
  /// answers with that error and cancels the call's task. The handler runs in the caller's
  /// task, with no second task, timer or continuation of the invoker's.
  case transport(any DeadlineTransport)
}

/// A transport that ends a call at its deadline (``DeadlineKeeper/transport(_:)``). A protocol
/// rather than a closure: a value holding one reference fits in the existential, so telling
/// the transport costs no allocation per call.
package protocol DeadlineTransport: Sendable {
  /// Ends the call at `deadline`, with `limit`'s error, unless it ended before.
  func endCall(at deadline: ContinuousClock.Instant, limit: TimeLimit)
}

/// The time limit a call runs under and where it came from (`Info.Timeout`, the caller's
/// deadline, `EXEC_TIMEOUT`).
package struct TimeLimit: Sendable {
  /// How long the call may take.
  let duration: Duration
  /// Which setting set it.
  let source: StaticString

  /// What the call ends with once past its deadline (made only then: formatting a duration
  /// is not free, and most calls end long before).
  var expired: HandlerError {
    HandlerError(.deadlineExceeded, "the call did not finish within its timeout (\(source) \(duration))")
  }
}

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
    callerTimeout: Duration? = nil,
    deadlineKeeper: DeadlineKeeper = .race
  ) async throws(HandlerError) -> Output {
    let call = try begin(request, requestID, method, callerTimeout, deadlineKeeper)
    guard call.runsDirectly else { return try await raced(call) { try await checkedOutput(request, $0) } }
    defer { gate.leave() }
    do {
      return try succeeded(call, try await checkedOutput(request, call.context))
    } catch {
      throw failed(call, error)
    }
  }

  /// Runs one call whose reply must be text, as OpenFx's `Call` (a proto3 `string`) requires:
  /// the output returned is text or valid UTF-8 bytes (kept as they are, not made a string).
  ///
  /// Output that is not valid UTF-8 is an `internalError`, never repaired text.
  package func invokeForText(
    _ request: Request,
    requestID: String?,
    method: String,
    callerTimeout: Duration? = nil,
    deadlineKeeper: DeadlineKeeper = .race
  ) async throws(HandlerError) -> Output {
    let call = try begin(request, requestID, method, callerTimeout, deadlineKeeper)
    guard call.runsDirectly else {
      return try await raced(call) { try checkedText(try await checkedOutput(request, $0), method: method) }
    }
    defer { gate.leave() }
    do {
      return try succeeded(call, try checkedText(try await checkedOutput(request, call.context), method: method))
    } catch {
      throw failed(call, error)
    }
  }

  /// Runs one call and hands each output to `write` as the handler produces it: every output
  /// of a ``StreamingHandler``, or the one output of any other handler.
  package func invokeStreaming(
    _ request: Request,
    requestID: String?,
    method: String,
    callerTimeout: Duration? = nil,
    deadlineKeeper: DeadlineKeeper = .race,
    write: @escaping @Sendable (Output) async throws -> Void
  ) async throws(HandlerError) {
    let checkedWrite: @Sendable (Output) async throws -> Void = { output in
      try checkOutputSize(output)
      try await write(output)
    }
    let body: @Sendable (Context) async throws -> Void = { context in
      if let streaming = handler as? any StreamingHandler {
        try await streaming.handle(request, context: context, writer: OutputWriter(checkedWrite))
      } else {
        try await checkedWrite(try await handler.handle(request, context: context))
      }
    }
    let call = try begin(request, requestID, method, callerTimeout, deadlineKeeper)
    guard call.runsDirectly else { return try await raced(call, body) }
    defer { gate.leave() }
    do {
      try succeeded(call, try await body(call.context))
    } catch {
      throw failed(call, error)
    }
  }

  // MARK: The steps of a call
  //
  // Each entry point above spells out its direct path (begin, the handler, succeeded/failed)
  // instead of handing a closure to one generic runner: that closure escapes (the race needs
  // it) and so costs a malloc per call, measured at 16×16 with a uprobe (980k → 1,001k for
  // 20,000 calls). Only the race, which runs the work in a task anyway, takes a closure.

  /// A call let in by ``begin(_:_:_:_:_:)``.
  private struct AdmittedCall: Sendable {
    let context: Context
    let method: String
    let start: ContinuousClock.Instant
    /// The time limit that applies, if any.
    let limit: TimeLimit?
    /// Whether the transport keeps the deadline.
    let transportKeepsDeadline: Bool

    /// Whether the handler runs in the caller's task: no deadline, or the transport keeps it.
    var runsDirectly: Bool { context.deadline == nil || transportKeepsDeadline }

    /// What the call ends with once past its deadline.
    var expired: HandlerError {
      limit?.expired ?? HandlerError(.deadlineExceeded, "the call did not finish within its timeout")
    }
  }

  /// Checks the input's size, works out the deadline (and hands it to a transport that keeps
  /// it), builds the context and takes a slot in the gate; a refusal is logged and thrown.
  private func begin(
    _ request: Request, _ requestID: String?, _ method: String, _ callerTimeout: Duration?,
    _ deadlineKeeper: DeadlineKeeper
  ) throws(HandlerError) -> AdmittedCall {
    let start = ContinuousClock.now
    do throws(HandlerError) {
      guard request.input.count <= maxMessageBytes else {
        throw HandlerError(
          .resourceExhausted,
          "the input (\(request.input.count) bytes) is larger than MAX_MESSAGE_BYTES (\(maxMessageBytes))")
      }
      let limit = try timeLimit(infoTimeout: request.info.timeout, callerTimeout: callerTimeout)
      let name = request.info.functionName.isEmpty ? functionName : request.info.functionName
      let deadline = limit.map { start + $0.duration }
      let context =
        if let given = requestID.flatMap(Self.acceptableRequestID) {
          Context(requestID: given, functionName: name, deadline: deadline, logger: logger, mesh: mesh)
        } else {
          Context(functionName: name, deadline: deadline, logger: logger, mesh: mesh)
        }
      try admit()
      guard case .transport(let transport) = deadlineKeeper, let limit, let deadline = context.deadline else {
        return AdmittedCall(context: context, method: method, start: start, limit: limit, transportKeepsDeadline: false)
      }
      let call = AdmittedCall(context: context, method: method, start: start, limit: limit, transportKeepsDeadline: true)
      transport.endCall(at: deadline, limit: limit)
      return call
    } catch {
      logCall(Context(requestID: requestID ?? "-", logger: logger), method: method, start: start, outcome: error.code.rawValue)
      throw error
    }
  }

  /// Runs `body` raced against the call's deadline (``DeadlineKeeper/race``); the race gives
  /// the slot back when the body really ends.
  private func raced<Value: Sendable>(
    _ call: AdmittedCall, _ body: @escaping @Sendable (Context) async throws -> Value
  ) async throws(HandlerError) -> Value {
    do {
      let context = call.context
      return try succeeded(
        call, try await raceDeadline(context.deadline!, onWorkEnded: gate.leave) { try await body(context) })
    } catch {
      throw failed(call, error)
    }
  }

  /// The call's value, logged as ok; past a deadline the transport keeps, ``DeadlineExceeded``
  /// instead (the transport has answered with it, or is about to).
  private func succeeded<Value>(_ call: AdmittedCall, _ value: Value) throws -> Value {
    if call.transportKeepsDeadline, let deadline = call.context.deadline, ContinuousClock.now >= deadline {
      throw DeadlineExceeded()
    }
    logCall(call.context, method: call.method, start: call.start, outcome: "ok")
    return value
  }

  /// What the call fails with, logged: past a deadline (or once the race lost to it) the
  /// deadline's error, else the thrown error as a ``HandlerError``.
  private func failed(_ call: AdmittedCall, _ error: any Error) -> HandlerError {
    let pastKeptDeadline =
      call.transportKeepsDeadline && call.context.deadline.map { ContinuousClock.now >= $0 } ?? false
    let failure = error is DeadlineExceeded || pastKeptDeadline ? call.expired : HandlerError(converting: error)
    logCall(call.context, method: call.method, start: call.start, outcome: failure.code.rawValue)
    if failure.code == .unknown || failure.code == .internalError {
      call.context.logger.warning("handler failed", metadata: ["error": "\(failure.message)"])
    }
    return failure
  }

  /// `output`, once checked to be text or valid UTF-8, for methods that reply with a string.
  private func checkedText(_ output: Output, method: String) throws(HandlerError) -> Output {
    guard output.isValidUTF8 else {
      throw HandlerError(
        .internalError,
        "the handler's output (\(output.byteCount) bytes) is not valid UTF-8, and \(method) replies with a string; use CallBytes for binary output"
      )
    }
    return output
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
  func timeLimit(infoTimeout: String, callerTimeout: Duration?) throws(HandlerError) -> TimeLimit? {
    var shortest: TimeLimit? = execTimeout.map { TimeLimit(duration: $0, source: "EXEC_TIMEOUT") }
    // Considered from the weakest source up: on a tie the later (Info.Timeout) is named.
    func consider(_ duration: Duration, _ source: StaticString) {
      if shortest.map({ duration <= $0.duration }) ?? true { shortest = TimeLimit(duration: duration, source: source) }
    }
    if let callerTimeout { consider(max(callerTimeout, .zero), "the caller's deadline") }
    if !infoTimeout.isEmpty {
      guard let parsed = GoDuration.parse(infoTimeout) else {
        throw HandlerError(
          .invalidArgument, "Info.Timeout \"\(infoTimeout.prefix(64))\" is not a duration such as 30s, 1m30s or 30")
      }
      if parsed > .zero { consider(parsed, "Info.Timeout") }
    }
    return shortest
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
    let debug = logger.logLevel <= .debug
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

