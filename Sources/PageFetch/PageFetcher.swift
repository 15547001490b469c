internal import CCurlFetch
import Dispatch
import Foundation
import HandlerKit

// A target of its own: compiled in the crawler's target, next to its HTMLLinks import (libxml2,
// built on the system's ICU headers) and Foundation (with an ICU of its own), clean builds failed
// on the two ICUs' `UErrorCode`.

/// One page as fetched.
public struct Page: Sendable {
  /// The body as received (decompressed).
  public var body: [UInt8]
  /// The `charset` of the response's `Content-Type`, if it named one.
  public var charset: String?
}

/// Fetches a page with libcurl, loaded on first use (``CCurlFetch``), so that a watcher that
/// never crawls does not load it: redirects are followed here up to a bound (a loop is an error,
/// and only http and https are followed), the body is capped, the whole fetch is bounded in time
/// and stops when the call is cancelled; failures are ``HandlerError``s naming the URL.
public struct PageFetcher: Sendable {
  /// The longest the whole fetch may take, redirects included.
  public var timeout: Duration
  /// The largest body read, in bytes.
  public var maxBytes: Int
  /// The most redirects followed.
  public var maxRedirects: Int

  /// A fetcher with these bounds (the crawler's `CRAWLER_TIMEOUT`, `CRAWLER_MAX_BYTES` and 10).
  public init(timeout: Duration, maxBytes: Int, maxRedirects: Int) {
    self.timeout = timeout
    self.maxBytes = maxBytes
    self.maxRedirects = maxRedirects
  }

  /// GETs `url`, following redirects; a status other than 2xx, a failure, a body over
  /// ``maxBytes`` or a fetch over ``timeout`` is a ``HandlerError`` naming the URL.
  public func fetch(_ url: URL) async throws -> Page {
    var reason = [CChar](repeating: 0, count: 256)
    guard fx_fetch_load(&reason, reason.count) == 0 else {
      throw HandlerError(.unavailable, reason.withUnsafeBytes(Self.text(ofCString:)))
    }
    let deadline = ContinuousClock.now + timeout
    var address = url.absoluteString
    var visited: Set<String> = [address]
    while true {
      let remaining = deadline - .now
      guard remaining > .zero else { throw timedOut(url) }
      let response = try await get(address, within: remaining, of: url)
      if (300..<400).contains(response.status), let target = response.redirect {
        try followable(target, visited: visited, from: url)
        visited.insert(target)
        address = target
        continue
      }
      guard (200..<300).contains(response.status) else {
        let code: HandlerError.Code = response.status == 404 || response.status == 410 ? .notFound : .unavailable
        throw HandlerError(code, "fetching \(address) answered HTTP \(response.status)")
      }
      return Page(body: response.body, charset: response.contentType.flatMap(Self.charset(ofContentType:)))
    }
  }

  /// Refuses a redirect to `target` that loops, goes past the bound or leaves http(s).
  private func followable(_ target: String, visited: Set<String>, from url: URL) throws {
    if visited.contains(target) {
      throw HandlerError(.failedPrecondition, "fetching \(url) ran into a redirect loop at \(target)")
    }
    if visited.count > maxRedirects {
      throw HandlerError(.failedPrecondition, "fetching \(url) took more than \(maxRedirects) redirects")
    }
    let scheme = URL(string: target)?.scheme?.lowercased() ?? ""
    guard ["http", "https"].contains(scheme) else {
      throw HandlerError(.failedPrecondition, "fetching \(url) was redirected to a non-http URL \(target)")
    }
  }

  /// One response, as libcurl gave it.
  private struct Response: Sendable {
    var status: Int
    var contentType: String?
    var redirect: String?
    var body: [UInt8]
  }

  /// GETs `address` on a thread of its own (libcurl blocks), stopping it if the call is cancelled.
  private func get(_ address: String, within timeout: Duration, of url: URL) async throws -> Response {
    let flag = CancelFlag()
    let fetcher = self
    let milliseconds = max(1, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
          var result = fx_fetch_result()
          defer { fx_fetch_result_free(&result) }
          let outcome = fx_fetch_get(address, milliseconds, fetcher.maxBytes, flag.pointer, &result)
          if result.cancelled != 0 {
            continuation.resume(throwing: HandlerError(.cancelled, "the fetch of \(url) was cancelled"))
          } else if result.too_large != 0 {
            continuation.resume(
              throwing: HandlerError(
                .resourceExhausted, "the page at \(url) is larger than \(fetcher.maxBytes) bytes (CRAWLER_MAX_BYTES)"))
          } else if result.timed_out != 0 {
            continuation.resume(throwing: fetcher.timedOut(url))
          } else if outcome != 0 {
            let reason = withUnsafeBytes(of: result.error, Self.text(ofCString:))
            continuation.resume(throwing: HandlerError(.unavailable, "fetching \(address) failed: \(reason)"))
          } else {
            continuation.resume(
              returning: Response(
                status: result.status,
                contentType: result.content_type.map { String(cString: $0) },
                redirect: result.redirect_url.map { String(cString: $0) },
                body: result.body.map { Array(UnsafeBufferPointer(start: $0, count: result.body_length)) } ?? []))
          }
        }
      }
    } onCancel: {
      flag.set()
    }
  }

  /// The text of a NUL-terminated reason the C side wrote into a buffer.
  private static func text(ofCString buffer: UnsafeRawBufferPointer) -> String {
    String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
  }

  private func timedOut(_ url: URL) -> HandlerError {
    HandlerError(.deadlineExceeded, "fetching \(url) took longer than \(timeout)")
  }

  /// `text/html; charset=EUC-KR` → `EUC-KR`.
  static func charset(ofContentType value: String) -> String? {
    for parameter in value.split(separator: ";").dropFirst() {
      let pair = parameter.split(separator: "=", maxSplits: 1)
      guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "charset" else { continue }
      let charset = pair[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
      return charset.isEmpty ? nil : charset
    }
    return nil
  }
}

/// The flag a transfer polls to know it should stop: C memory, as libcurl's callback reads it.
private final class CancelFlag: @unchecked Sendable {
  /// Set through ``set()`` only; read by the transfer's thread.
  let pointer: UnsafeMutablePointer<Int32>

  init() {
    pointer = .allocate(capacity: 1)
    pointer.initialize(to: 0)
  }

  deinit {
    pointer.deallocate()
  }

  func set() {
    fx_fetch_flag_set(pointer)
  }
}
