import NIOCore

/// A `TaskExecutor` that runs jobs on one SwiftNIO event loop.
///
/// The HTTP/2 transport starts each call's task with this executor as its preference, so a
/// handler that does not block runs on the thread that read its request and writes its reply
/// without a hop to Swift's global pool and back (the hops cost more than the call itself).
final class EventLoopTaskExecutor: TaskExecutor {
  /// The loop the jobs run on.
  let eventLoop: any EventLoop

  init(_ eventLoop: any EventLoop) {
    self.eventLoop = eventLoop
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    eventLoop.execute {
      job.runSynchronously(on: self.asUnownedTaskExecutor())
    }
  }
}
