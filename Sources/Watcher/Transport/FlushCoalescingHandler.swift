import NIOCore

/// Sits next to the socket and turns the flushes of one event-loop tick into one.
///
/// Calls finish in their own tasks, each flushing its stream; passed straight on, every reply
/// would be a `writev` of its own. Deferring the socket flush to a task queued behind the
/// calls finishing in the same tick writes all their replies in one system call.
///
/// Once the connection is asked to quiesce, flushes pass straight through again: the graceful
/// close (GOAWAY, PING, GOAWAY) relies on its frames leaving in order with the stream replies.
final class FlushCoalescingHandler: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private var flushPending = false
  private var passThrough = false

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is ChannelShouldQuiesceEvent {
      passThrough = true
      if flushPending {
        flushPending = false
        context.flush()
      }
    }
    context.fireUserInboundEventTriggered(event)
  }

  func flush(context: ChannelHandlerContext) {
    if passThrough { return context.flush() }
    guard !flushPending else { return }
    flushPending = true
    let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
    let context = NIOLoopBound(context, eventLoop: context.eventLoop)
    context.value.eventLoop.execute {
      let handler = handler.value
      guard handler.flushPending else { return }
      handler.flushPending = false
      context.value.flush()
    }
  }
}
