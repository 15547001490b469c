import HandlerKit
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One gRPC call on one HTTP/2 stream: reads the request headers and messages the connection
/// hands it, runs the method in a task on the connection's event loop, and writes the reply
/// headers, messages and trailers through the connection.
///
/// Refusals follow the gRPC spec: an unknown path is UNIMPLEMENTED, a compressed message or
/// `grpc-encoding` other than `identity` is UNIMPLEMENTED (every response says
/// `grpc-accept-encoding: identity`),
/// a message larger than the limit is RESOURCE_EXHAUSTED as soon as its length prefix arrives,
/// a unary call with no message, two messages or a cut-off message is INTERNAL, a content type
/// other than `application/grpc…` is HTTP 415 and a method other than POST is HTTP 405; malformed
/// request headers (``RequestHeaders``) reset the stream with PROTOCOL_ERROR. When the
/// reply ends before the request does, the stream is reset with NO_ERROR so the caller stops
/// sending.
///
/// Used on the connection's event loop only.
final class GRPCStream: DeadlineWatched {
  /// How many request messages of a stream may wait for the handler before the stream's
  /// flow-control window stops being given back (and HTTP/2 holds the caller back).
  static let maximumWaitingMessages = 16

  /// The stream's id on its connection.
  let id: HTTP2StreamID
  /// Where frames go; `nil` once the stream is closed.
  private var connection: HTTP2ServerConnection?
  private let methods: [String: GRPCMethod]
  private let executor: EventLoopTaskExecutor
  private let deadlines: DeadlineWatch
  private var reader: GRPCMessageReader
  private var window: InboundWindow
  private var method: GRPCMethod?
  private var call = CallMetadata()
  private var unaryMessage: ByteBuffer?
  private var messagesReceived = 0
  /// Request messages of a streaming call waiting for the handler; made for the first one (a
  /// unary call never needs it).
  private var waiting: CircularBuffer<ByteBuffer>?
  private var requestsEnded = false
  private var running: Task<Void, Never>?
  private var headersSent = false
  private var finished = false
  /// The time limit of the call the deadline watch keeps, if one does.
  private var limit: TimeLimit?

  private let maxMessageBytes: Int
  private let liveStreams: LiveCount

  /// Creates the call of stream `id` on `connection`; `maxMessageBytes` is `MAX_MESSAGE_BYTES`,
  /// the largest input (a request message may be somewhat larger: it carries `Info` too).
  /// `executor` runs the calls and `deadlines` keeps their deadlines, both on the connection's
  /// event loop; `windowSize` is the stream's flow-control window; `liveStreams` counts the
  /// stream objects.
  init(
    id: HTTP2StreamID, connection: HTTP2ServerConnection, methods: [String: GRPCMethod],
    executor: EventLoopTaskExecutor, deadlines: DeadlineWatch, maxMessageBytes: Int, windowSize: Int,
    liveStreams: LiveCount
  ) {
    self.liveStreams = liveStreams
    liveStreams.increment()
    self.id = id
    self.connection = connection
    self.methods = methods
    self.executor = executor
    self.deadlines = deadlines
    self.maxMessageBytes = maxMessageBytes
    self.reader = GRPCMessageReader(maxMessageBytes: Self.largestRequestMessage(maxMessageBytes: maxMessageBytes))
    self.window = InboundWindow(target: windowSize)
  }

  deinit {
    liveStreams.decrement()
  }

  private var waitingCount: Int { waiting?.count ?? 0 }

  /// The largest request message read: `MAX_MESSAGE_BYTES` plus room for the rest of the
  /// request, so an input just over the limit is refused by the pipeline with its message.
  static func largestRequestMessage(maxMessageBytes: Int) -> Int {
    maxMessageBytes.addingReportingOverflow(64 * 1024).overflow ? Int.max : maxMessageBytes + 64 * 1024
  }

  /// The stream is closed (both sides ended it, either side reset it, or the connection went
  /// away): stop the work.
  func closed() {
    stopWork()
    connection = nil
    // The deadline keeper refers to this stream: let go of it, or the stream is never freed.
    call = CallMetadata()
  }

  /// Marks the stream finished and stops its call: the task, the deadline, waiting messages.
  private func stopWork() {
    finished = true
    running?.cancel()
    running = nil
    cancelDeadline()
    waiting = nil
  }

  /// The caller's headers are malformed (see ``RequestHeaders``): the stream is reset with
  /// PROTOCOL_ERROR and gets no response (RFC 9113 §8.1.1).
  private func resetMalformed() {
    guard !finished, let connection else { return }
    stopWork()
    connection.write(.rstStream(.protocolError), on: id)
    connection.flushSoon()
  }

  /// A HEADERS or DATA frame of this stream arrived.
  func receive(_ payload: HTTP2Frame.FramePayload) {
    switch payload {
    case .headers(let headers):
      // Known before any refusal, so a refusal does not reset a stream the caller has ended.
      if headers.endStream { requestsEnded = true }
      if method == nil && !finished {
        guard let request = RequestHeaders(validating: headers.headers) else { return resetMalformed() }
        start(request)
      } else if !RequestHeaders.areValidTrailers(headers.headers) {
        return resetMalformed()
      }
      if headers.endStream { requestsDidEnd() }
    case .data(let frame):
      if frame.endStream { requestsEnded = true }
      guard !finished, method != nil, case .byteBuffer(let bytes) = frame.data else { return }
      if waitingCount >= Self.maximumWaitingMessages {
        window.hold(bytes.readableBytes + (frame.paddingBytes.map { $0 + 1 } ?? 0))
      }
      reader.append(bytes)
      readMessages()
      if frame.endStream { requestsDidEnd() }
    default:
      break
    }
  }

  // MARK: Flow control

  /// The stream's receive window is now `size` bytes (DATA arrived).
  func inboundWindowChanged(to size: Int) {
    sendWindowUpdate(window.sizeChanged(to: size))
  }

  private func sendWindowUpdate(_ increment: Int?) {
    guard let increment, let connection, !finished, !requestsEnded else { return }
    let written = executor.eventLoop.makePromise(of: Void.self)
    connection.write(.windowUpdate(windowSizeIncrement: increment), on: id, promise: written)
    connection.flushSoon()
    let stream = NIOLoopBound(self, eventLoop: executor.eventLoop)
    written.futureResult.whenSuccess {
      stream.value.sendWindowUpdate(stream.value.window.updateWritten(increment))
    }
  }

  // MARK: Requests

  private func start(_ headers: RequestHeaders) {
    guard headers.method == "POST" else {
      return finish(GRPCStatus(.internalError, "gRPC calls are POST requests"), httpStatus: "405")
    }
    let contentType = headers.contentType ?? ""
    guard GRPCContentType.matches(contentType) else {
      return finish(
        GRPCStatus(.internalError, "content-type \"\(contentType.prefix(64))\" is not application/grpc"),
        httpStatus: "415")
    }
    let path = headers.path
    guard let method = methods[path] else {
      return finish(GRPCStatus(.unimplemented, "method \(path.prefix(128)) is not served here"))
    }
    if let encoding = headers.encoding, encoding != "identity" {
      return finish(
        GRPCStatus(.unimplemented, "grpc-encoding \(encoding.prefix(32)) is not supported; send identity"))
    }
    self.method = method
    call = CallMetadata(
      requestID: headers.requestID,
      callerTimeout: headers.timeout.flatMap(GRPCTimeout.parse),
      deadlineKeeper: deadlineKeeper())
  }

  // MARK: Deadlines

  /// Ends the call at the deadline the invoker works out: the stream answers with the invoker's
  /// error and cancels the call's task, which keeps its MAX_INFLIGHT slot until it really ends.
  private func deadlineKeeper() -> DeadlineKeeper {
    .transport(DeadlineEnforcer(stream: self))
  }

  /// Tells the stream its call's deadline, on the stream's event loop.
  private struct DeadlineEnforcer: DeadlineTransport, @unchecked Sendable {
    /// Used on its event loop only: directly when the call's task runs there (as it does,
    /// unless the handler moved it), else through the loop.
    let stream: GRPCStream

    func endCall(at deadline: ContinuousClock.Instant, limit: TimeLimit) {
      let loop = stream.executor.eventLoop
      if loop.inEventLoop {
        stream.endCall(at: deadline, limit: limit)
      } else {
        let stream = NIOLoopBound(stream, eventLoop: loop)
        loop.execute { stream.value.endCall(at: deadline, limit: limit) }
      }
    }
  }

  private func endCall(at deadline: ContinuousClock.Instant, limit: TimeLimit) {
    guard !finished else { return }
    self.limit = limit
    deadlines.watch(self, until: deadline)
  }

  func deadlinePassed() {
    guard let limit else { return }
    finish(GRPCStatus(limit.expired))
  }

  /// The call (or a message's call of a stream) ended before its deadline.
  private func cancelDeadline() {
    guard limit != nil else { return }
    limit = nil
    deadlines.forget(self)
  }

  private func readMessages() {
    guard let method else { return }
    while !finished {
      let message: ByteBuffer
      do {
        guard let next = try reader.next() else { return }
        message = next
      } catch {
        return finish(GRPCStatus(error, maxMessageBytes: maxMessageBytes))
      }
      messagesReceived += 1
      if method.streamsRequests {
        if waiting == nil { waiting = CircularBuffer(initialCapacity: 4) }
        waiting!.append(message)
        runNextWaitingMessage()
      } else if messagesReceived > 1 {
        return finish(GRPCStatus(.internalError, "more than one request message for a unary call"))
      } else {
        unaryMessage = message
      }
    }
  }

  private func requestsDidEnd() {
    requestsEnded = true
    guard !finished, let method else { return }
    if reader.hasPartialMessage {
      return finish(GRPCStatus(.internalError, "the request ended inside a message"))
    }
    switch method {
    case .eachRequest:
      if running == nil && waitingCount == 0 { finish(.ok) }
    case .unary(let body):
      guard let message = unaryMessage else {
        return finish(GRPCStatus(.internalError, "a unary call needs one request message"))
      }
      unaryMessage = nil
      runTask { [call] in try await body(message, call) } completion: { handler, result in
        handler.unaryDidFinish(result)
      }
    case .serverStreaming(let body):
      guard let message = unaryMessage else {
        return finish(GRPCStatus(.internalError, "a server-streaming call needs one request message"))
      }
      unaryMessage = nil
      let writer = replyWriter()
      runTask { [call] in try await body(message, call, writer) } completion: { handler, result in
        handler.streamDidFinish(result.map { _ in () })
      }
    }
  }

  private func runNextWaitingMessage() {
    guard running == nil, !finished, case .eachRequest(let body) = method, let message = waiting?.popFirst() else { return }
    if window.held > 0 && waitingCount < Self.maximumWaitingMessages {
      sendWindowUpdate(window.releaseHeld())
    }
    runTask { [call] in try await body(message, call) } completion: { handler, result in
      handler.eachRequestDidFinish(result)
    }
  }

  // MARK: Running the method

  /// Runs `work` in a task on the stream's event loop and hands its result to `completion` there.
  private func runTask<Value: Sendable>(
    _ work: @escaping @Sendable () async throws -> Value,
    completion: @escaping (GRPCStream, Result<Value, GRPCStatus>) -> Void
  ) {
    let end = TaskEnd(stream: self, completion: completion)
    running = Task(executorPreference: executor) {
      let result: Result<Value, GRPCStatus>
      do {
        result = .success(try await work())
      } catch {
        result = .failure(GRPCStatus(converting: error))
      }
      end.deliver(result)
    }
  }

  /// Hands a call task's result to its stream, on the stream's event loop: directly when the
  /// task ends there (as it does, running with the loop as its executor), else through the loop.
  private struct TaskEnd<Value: Sendable>: @unchecked Sendable {
    /// Used on its event loop only.
    let stream: GRPCStream
    let completion: (GRPCStream, Result<Value, GRPCStatus>) -> Void

    func deliver(_ result: Result<Value, GRPCStatus>) {
      let loop = stream.executor.eventLoop
      if loop.inEventLoop {
        deliverOnLoop(result)
      } else {
        loop.execute { deliverOnLoop(result) }
      }
    }

    private func deliverOnLoop(_ result: Result<Value, GRPCStatus>) {
      stream.running = nil
      completion(stream, result)
    }
  }

  private func unaryDidFinish(_ result: Result<ByteBuffer, GRPCStatus>) {
    guard !finished else { return }
    switch result {
    case .success(let reply):
      write(reply)
      finish(.ok)
    case .failure(let status):
      finish(status)
    }
  }

  private func eachRequestDidFinish(_ result: Result<ByteBuffer, GRPCStatus>) {
    guard !finished else { return }
    switch result {
    case .success(let reply):
      cancelDeadline()
      write(reply)
      connection?.flushSoon()
      if waitingCount > 0 {
        runNextWaitingMessage()
      } else if requestsEnded {
        finish(.ok)
      }
    case .failure(let status):
      finish(status)
    }
  }

  private func streamDidFinish(_ result: Result<Void, GRPCStatus>) {
    guard !finished else { return }
    switch result {
    case .success: finish(.ok)
    case .failure(let status): finish(status)
    }
  }

  /// Writes each reply of a server-streaming method and waits until it is passed on.
  private func replyWriter() -> GRPCMethod.ReplyWriter {
    let loop = executor.eventLoop
    let handler = NIOLoopBound(self, eventLoop: loop)
    return { reply in
      try await loop.flatSubmit { () -> EventLoopFuture<Void> in
        let handler = handler.value
        guard let connection = handler.connection, !handler.finished else {
          return loop.makeFailedFuture(CancellationError())
        }
        let promise = loop.makePromise(of: Void.self)
        handler.write(reply, promise: promise)
        connection.flushSoon()
        return promise.futureResult
      }.get()
    }
  }

  // MARK: Replies

  /// Writes one framed reply message, after the response headers if they are not out yet.
  private func write(_ reply: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
    guard let connection else {
      promise?.fail(CancellationError())
      return
    }
    if !headersSent {
      headersSent = true
      connection.write(.headers(.init(headers: Self.okResponseHeaders)), on: id)
    }
    connection.write(.data(.init(data: .byteBuffer(reply))), on: id, promise: promise)
  }

  /// The headers every response starts with; they tell callers this server takes identity
  /// encoding only, which a caller refused for compressing needs to hear.
  private static func responseHeaders(status: String) -> HPACKHeaders {
    [":status": status, "content-type": "application/grpc", "grpc-accept-encoding": "identity"]
  }

  /// The headers of an answered call, made once rather than per call.
  private static let okResponseHeaders = responseHeaders(status: "200")

  /// The trailers of a call that succeeded after its headers, made once rather than per call.
  private static let okTrailers: HPACKHeaders = ["grpc-status": "0"]

  /// Ends the call with `status`: trailers (alone, with `httpStatus`, when nothing was sent
  /// yet), then a reset if the caller is still sending.
  private func finish(_ status: GRPCStatus, httpStatus: String = "200") {
    guard !finished, let connection else { return }
    stopWork()
    let trailers: HPACKHeaders
    if headersSent && status.code == 0 && status.message.isEmpty {
      trailers = Self.okTrailers
    } else {
      var fields = headersSent ? HPACKHeaders() : Self.responseHeaders(status: httpStatus)
      fields.add(name: "grpc-status", value: String(status.code))
      if !status.message.isEmpty {
        fields.add(name: "grpc-message", value: status.encodedMessage)
      }
      trailers = fields
    }
    headersSent = true
    connection.write(.headers(.init(headers: trailers, endStream: true)), on: id)
    if !requestsEnded {
      // The caller is still sending: tell it to stop, the reply is complete.
      connection.write(.rstStream(.noError), on: id)
    }
    connection.flushSoon()
  }
}

extension GRPCStatus {
  /// The status for a request the reader cannot accept.
  init(_ failure: GRPCMessageReader.Failure, maxMessageBytes: Int) {
    switch failure {
    case .compressed:
      self.init(.unimplemented, "the request message is compressed but no grpc-encoding was negotiated")
    case .badFlag(let flag):
      self.init(.internalError, "the message flag \(flag) is neither 0 nor 1")
    case .tooLarge(let size):
      self.init(
        .resourceExhausted, "the request message (\(size) bytes) is too large for MAX_MESSAGE_BYTES (\(maxMessageBytes))")
    }
  }

  /// The status for whatever a method threw.
  init(converting error: any Error) {
    self.init(HandlerError(converting: error))
  }
}
