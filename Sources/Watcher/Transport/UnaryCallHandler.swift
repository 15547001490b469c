import HandlerKit
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Why a call a ``MeshConnection`` carried did not return a reply: the gRPC status it ended with,
/// or the client-side failure with the code gRPC clients give it.
struct MeshCallFailure: Error {
  /// The gRPC status code's name.
  var code: HandlerError.Code
  /// What went wrong, as the callee said it or as the client saw it.
  var message: String
  /// Whether the callee surely never saw the call (its stream was refused or never opened), so it
  /// may be sent again on another connection.
  var wasNotProcessed = false

  static func unavailable(_ message: String, wasNotProcessed: Bool = false) -> MeshCallFailure {
    MeshCallFailure(code: .unavailable, message: message, wasNotProcessed: wasNotProcessed)
  }

  static func internalError(_ message: String) -> MeshCallFailure {
    MeshCallFailure(code: .internalError, message: message)
  }
}

/// The result of one call, settled once, by whichever comes first: the reply or status, the
/// deadline, the caller's cancellation or the stream's end. Made anywhere, then used only on the
/// connection's event loop (hence unchecked).
final class UnaryCallOutcome: @unchecked Sendable {
  let promise: EventLoopPromise<ByteBuffer>
  private(set) var isSettled = false
  /// The call's stream, once opened: closing it resets the stream.
  var stream: (any Channel)?

  init(eventLoop: any EventLoop) {
    promise = eventLoop.makePromise()
  }

  /// Settles the call with `result` unless it is settled already; a failure closes the stream.
  func settle(_ result: Result<ByteBuffer, MeshCallFailure>) {
    guard !isSettled else { return }
    isSettled = true
    switch result {
    case .success(let reply):
      promise.succeed(reply)
    case .failure(let failure):
      promise.fail(failure)
      stream?.close(promise: nil)
    }
  }
}

/// Makes one unary gRPC call on an HTTP/2 stream channel: sends the request's headers and its one
/// framed message, then reads the reply's headers, its one message and the trailers, as the gRPC
/// over HTTP/2 protocol has them (a trailers-only reply included).
///
/// What is not a proper reply settles the call with the code gRPC clients give it: an HTTP status
/// other than 200 its mapped code, a content type other than gRPC's `UNKNOWN`, a message over the
/// limit `RESOURCE_EXHAUSTED`, a compressed one (none was asked for), a second message, a missing
/// message or missing trailers `INTERNAL`, a stream reset as gRPC clients map its code (see
/// ``failure(ofReset:)``), a connection lost `UNAVAILABLE`. The deadline settles it as
/// `DEADLINE_EXCEEDED` and resets the stream.
final class UnaryCallHandler: ChannelInboundHandler {
  typealias InboundIn = HTTP2Frame.FramePayload
  typealias OutboundOut = HTTP2Frame.FramePayload

  private let headers: HPACKHeaders
  private let message: ByteBuffer
  private let timeout: Duration
  private let outcome: UnaryCallOutcome
  private let connection: MeshConnection.Usage
  private var reader: GRPCMessageReader
  private var reply: ByteBuffer?
  private var sawResponseHeaders = false
  private var deadline: Scheduled<Void>?

  /// A call sending `headers` and the framed `message`, settling `outcome`, given up after
  /// `timeout`; replies longer than `maxReplyBytes` are refused. `connection` says whether the
  /// callee's GOAWAY left the stream out.
  init(
    headers: HPACKHeaders, message: ByteBuffer, timeout: Duration, maxReplyBytes: Int, outcome: UnaryCallOutcome,
    connection: MeshConnection.Usage
  ) {
    self.headers = headers
    self.message = message
    self.timeout = timeout
    self.outcome = outcome
    self.connection = connection
    self.reader = GRPCMessageReader(maxMessageBytes: maxReplyBytes)
  }

  func handlerAdded(context: ChannelHandlerContext) {
    outcome.stream = context.channel
    let outcome = self.outcome
    let timeout = self.timeout
    deadline = context.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
      outcome.settle(.failure(MeshCallFailure(code: .deadlineExceeded, message: "no reply within \(timeout)")))
    }
    if outcome.isSettled { context.close(promise: nil) }
  }

  func channelActive(context: ChannelHandlerContext) {
    guard !outcome.isSettled else { return }
    context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
    let sent = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(message), endStream: true))), promise: sent)
    let outcome = self.outcome
    sent.futureResult.whenFailure { error in
      // NIOHTTP2 refuses to open a stream on a connection the callee is closing (or closed).
      outcome.settle(.failure(.unavailable("the request could not be sent: \(error)", wasNotProcessed: true)))
    }
    context.fireChannelActive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !outcome.isSettled else { return }
    switch unwrapInboundIn(data) {
    case .headers(let frame):
      if sawResponseHeaders {
        finish(trailers: frame.headers)
      } else {
        sawResponseHeaders = true
        if let failure = Self.failure(ofResponseHeaders: frame.headers) {
          outcome.settle(.failure(failure))
        } else if frame.endStream {
          finish(trailers: frame.headers)
        }
      }
    case .data(let frame):
      guard sawResponseHeaders, case .byteBuffer(let bytes) = frame.data else {
        outcome.settle(.failure(.internalError("the callee sent data before its headers")))
        return
      }
      receive(bytes)
      if frame.endStream && !outcome.isSettled {
        outcome.settle(.failure(.internalError("the callee's reply ended without trailers")))
      }
    default:
      break
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if let closed = error as? NIOHTTP2Errors.StreamClosed {
      // NIOHTTP2 closes the streams a GOAWAY left out as if they were cancelled.
      if connection.wasLeftOut(closed.streamID) {
        outcome.settle(.failure(.unavailable("the callee was going away and did not take the call", wasNotProcessed: true)))
      } else {
        outcome.settle(.failure(Self.failure(ofReset: closed.errorCode)))
      }
    } else {
      outcome.settle(.failure(.unavailable("\(error)")))
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    deadline?.cancel()
    outcome.settle(.failure(.unavailable("the connection closed before the reply")))
    context.fireChannelInactive()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    deadline?.cancel()
  }

  private func receive(_ bytes: ByteBuffer) {
    reader.append(bytes)
    do {
      while let message = try reader.next() {
        guard reply == nil else {
          outcome.settle(.failure(.internalError("the callee sent more than one reply message")))
          return
        }
        reply = message
      }
    } catch {
      switch error {
      case .tooLarge(let size):
        outcome.settle(
          .failure(
            MeshCallFailure(
              code: .resourceExhausted,
              message: "the reply is \(size) bytes, more than the \(reader.maxMessageBytes) a mesh call takes")))
      case .compressed:
        outcome.settle(.failure(.internalError("the callee compressed its reply, which was not asked for")))
      case .badFlag(let flag):
        outcome.settle(.failure(.internalError("the reply's message flag is \(flag)")))
      }
    }
  }

  private func finish(trailers: HPACKHeaders) {
    deadline?.cancel()
    guard let status = trailers.first(name: "grpc-status").flatMap(Int.init) else {
      outcome.settle(.failure(.internalError("the callee's trailers have no grpc-status")))
      return
    }
    guard status == 0 else {
      let message = trailers.first(name: "grpc-message").map(GRPCStatus.decodedMessage) ?? ""
      outcome.settle(.failure(MeshCallFailure(code: HandlerError.Code(grpcStatusCode: status), message: message)))
      return
    }
    guard let reply, !reader.hasPartialMessage else {
      outcome.settle(.failure(.internalError("the callee answered OK without a whole reply message")))
      return
    }
    outcome.settle(.success(reply))
  }

  /// The failure the reply's first headers stand for, if they are not a gRPC reply's.
  static func failure(ofResponseHeaders headers: HPACKHeaders) -> MeshCallFailure? {
    let status = headers.first(name: ":status") ?? ""
    guard status == "200" else {
      // gRPC's mapping of HTTP statuses for replies without a gRPC status.
      let code: HandlerError.Code =
        switch status {
        case "400": .internalError
        case "401": .unauthenticated
        case "403": .permissionDenied
        case "404": .unimplemented
        case "429", "502", "503", "504": .unavailable
        default: .unknown
        }
      return MeshCallFailure(code: code, message: "the callee answered HTTP status \(status)")
    }
    let contentType = headers.first(name: "content-type") ?? ""
    guard GRPCContentType.matches(contentType) else {
      return MeshCallFailure(code: .unknown, message: "the reply's content type is \"\(contentType)\", not gRPC's")
    }
    return nil
  }

  /// The failure of a stream the callee reset with `code`, as gRPC clients map it.
  static func failure(ofReset code: HTTP2ErrorCode) -> MeshCallFailure {
    switch code {
    case .refusedStream:
      .unavailable("the callee refused the stream", wasNotProcessed: true)
    case .cancel:
      MeshCallFailure(code: .cancelled, message: "the callee cancelled the call")
    case .enhanceYourCalm:
      MeshCallFailure(code: .resourceExhausted, message: "the callee asked to slow down (ENHANCE_YOUR_CALM)")
    case .inadequateSecurity:
      MeshCallFailure(code: .permissionDenied, message: "the callee reset the stream: INADEQUATE_SECURITY")
    default:
      .internalError("the callee reset the stream: \(code)")
    }
  }
}
