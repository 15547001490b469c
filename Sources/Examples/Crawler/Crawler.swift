import Foundation
import HTMLLinks
import HandlerKit

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The seed's `crawler`: fetches a page and replies with its first 20 `a.issue` links as
/// `"<n>,<text>"` lines, as `requests.get(url).text` + BeautifulSoup(`html.parser`) did.
///
/// The URL is the request's input, else `CRAWLER_URL`, else the original's
/// `http://www.naver.com`. The page is decoded by the charset of its `Content-Type`, else its
/// `<meta charset>`, else UTF-8 (the original used ISO-8859-1 when the header named none,
/// which garbles Korean pages; that difference is deliberate).
public struct Crawler: Handler {
  /// What the crawler fetches and how far it goes.
  public struct Settings: Sendable {
    /// The page fetched when the input names none.
    public var defaultURL: String
    /// The longest a fetch may take, redirects included.
    public var timeout: Duration
    /// The largest page read, in bytes.
    public var maxBytes: Int
    /// The most redirects followed.
    public var maxRedirects: Int
    /// How many links are listed.
    public var limit: Int

    /// The original's URL, 10 s, 5 MiB, 10 redirects, 20 links.
    public init(
      defaultURL: String = "http://www.naver.com",
      timeout: Duration = .seconds(10),
      maxBytes: Int = 5 * 1024 * 1024,
      maxRedirects: Int = 10,
      limit: Int = 20
    ) {
      self.defaultURL = defaultURL
      self.timeout = timeout
      self.maxBytes = maxBytes
      self.maxRedirects = maxRedirects
      self.limit = limit
    }

    /// The settings from `CRAWLER_URL`, `CRAWLER_TIMEOUT` (seconds) and `CRAWLER_MAX_BYTES`.
    public init(environment: [String: String]) throws {
      self.init()
      if let url = environment["CRAWLER_URL"], !url.isEmpty {
        defaultURL = url
      }
      if let text = environment["CRAWLER_TIMEOUT"], !text.isEmpty {
        guard let seconds = Double(text), seconds > 0 else {
          throw HandlerError(.invalidArgument, "invalid CRAWLER_TIMEOUT \"\(text)\": expected seconds, such as 10")
        }
        timeout = .milliseconds(Int64(seconds * 1000))
      }
      if let text = environment["CRAWLER_MAX_BYTES"], !text.isEmpty {
        guard let bytes = Int(text), bytes > 0 else {
          throw HandlerError(.invalidArgument, "invalid CRAWLER_MAX_BYTES \"\(text)\": expected a number of bytes")
        }
        maxBytes = bytes
      }
    }
  }

  private let settings: Settings

  /// Creates the crawler.
  public init(settings: Settings = Settings()) {
    self.settings = settings
  }

  /// Fetches the page the input (or the setting) names and lists its issue links.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    let named = try request.requireText().trimmingCharacters(in: .whitespacesAndNewlines)
    let address = named.isEmpty ? settings.defaultURL : named
    guard let url = URL(string: address), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
      url.host != nil
    else {
      throw HandlerError.invalidArgument("\"\(address.prefix(200))\" is not an http or https URL")
    }
    let page = try await PageFetcher(settings: settings).fetch(url)
    let encoding = page.charset ?? Self.metaCharset(in: page.body) ?? "UTF-8"
    let texts = IssueLinks.texts(html: page.body, encoding: encoding, limit: settings.limit)
    return .text(texts.enumerated().map { "\($0.offset + 1),\($0.element)" }.joined(separator: "\n"))
  }

  /// The charset a page declares in a `<meta charset>` or `<meta http-equiv content>` near its start.
  static func metaCharset(in body: [UInt8]) -> String? {
    let head = String(decoding: body.prefix(4096), as: UTF8.self).lowercased()
    guard let range = head.range(of: #"<meta[^>]*charset\s*=\s*["']?\s*([a-z0-9_.:-]+)"#, options: .regularExpression)
    else { return nil }
    let match = head[range]
    guard let equals = match.range(of: "charset")?.upperBound else { return nil }
    let value = match[equals...].drop { $0 == "=" || $0 == " " || $0 == "\"" || $0 == "'" || $0.isWhitespace }
    return value.isEmpty ? nil : String(value)
  }
}

/// One page as fetched.
struct Page {
  var body: [UInt8]
  /// The `charset` of the response's `Content-Type`, if it named one.
  var charset: String?
}

/// Fetches a page with URLSession: redirects followed up to a bound (a loop is an error), the
/// body capped, the whole fetch bounded in time; failures are ``HandlerError``s with the URL.
struct PageFetcher {
  let settings: Crawler.Settings

  func fetch(_ url: URL) async throws -> Page {
    let delegate = FetchDelegate(settings: settings, url: url)
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = Double(settings.timeout.components.seconds) + 1
    configuration.timeoutIntervalForResource = Double(settings.timeout.components.seconds) + 1
    let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
    defer { session.finishTasksAndInvalidate() }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { continuation in
        delegate.start(session: session, continuation: continuation)
      }
    } onCancel: {
      delegate.cancel(with: HandlerError(.cancelled, "the fetch of \(url) was cancelled"))
    }
  }
}

/// Collects one data task's response and body, enforcing the crawler's bounds.
private final class FetchDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
  private let settings: Crawler.Settings
  private let url: URL
  private let lock = NSLock()
  private var continuation: CheckedContinuation<Page, any Error>?
  private var task: URLSessionDataTask?
  private var body: [UInt8] = []
  private var charset: String?
  private var visited: Set<String> = []
  private var failure: HandlerError?
  private var timer: DispatchWorkItem?

  init(settings: Crawler.Settings, url: URL) {
    self.settings = settings
    self.url = url
    visited.insert(url.absoluteString)
  }

  func start(session: URLSession, continuation: CheckedContinuation<Page, any Error>) {
    let task = session.dataTask(with: url)
    let timer = DispatchWorkItem { [weak self] in
      guard let self else { return }
      self.cancel(with: HandlerError(.deadlineExceeded, "fetching \(self.url) took longer than \(self.settings.timeout)"))
    }
    lock.withLock {
      self.continuation = continuation
      self.task = task
      self.timer = timer
    }
    DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(settings.timeout.components.seconds * 1_000_000_000 + settings.timeout.components.attoseconds / 1_000_000_000)), execute: timer)
    task.resume()
  }

  func cancel(with error: HandlerError) {
    record(error)
    lock.withLock { task }?.cancel()
  }

  /// Keeps the first failure; it is what the caller sees when the task completes.
  private func record(_ error: HandlerError) {
    lock.withLock {
      if failure == nil { failure = error }
    }
  }

  func urlSession(
    _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
  ) {
    let target = request.url?.absoluteString ?? ""
    let problem = lock.withLock { () -> HandlerError? in
      if visited.contains(target) {
        return HandlerError(.failedPrecondition, "fetching \(url) ran into a redirect loop at \(target)")
      }
      if visited.count > settings.maxRedirects {
        return HandlerError(.failedPrecondition, "fetching \(url) took more than \(settings.maxRedirects) redirects")
      }
      if let scheme = request.url?.scheme?.lowercased(), !["http", "https"].contains(scheme) {
        return HandlerError(.failedPrecondition, "fetching \(url) was redirected to a non-http URL \(target)")
      }
      visited.insert(target)
      return nil
    }
    if let problem {
      // Refuse the redirect only: cancelling the task inside this callback crashes
      // FoundationNetworking ("Received callback for HTTP redirection, but we're not waiting
      // for it"). The task then ends with the redirect as its response.
      record(problem)
      completionHandler(nil)
    } else {
      completionHandler(request)
    }
  }

  func urlSession(
    _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
  ) {
    guard let http = response as? HTTPURLResponse else {
      completionHandler(.allow)
      return
    }
    guard (200..<300).contains(http.statusCode) else {
      let code: HandlerError.Code = http.statusCode == 404 || http.statusCode == 410 ? .notFound : .unavailable
      cancel(with: HandlerError(code, "fetching \(http.url ?? url) answered HTTP \(http.statusCode)"))
      completionHandler(.cancel)
      return
    }
    if let contentType = http.value(forHTTPHeaderField: "Content-Type") {
      lock.withLock { charset = Self.charset(ofContentType: contentType) }
    }
    if http.expectedContentLength > Int64(settings.maxBytes) {
      cancel(with: tooLarge(http.expectedContentLength))
      completionHandler(.cancel)
      return
    }
    completionHandler(.allow)
  }

  func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
    let size = lock.withLock { () -> Int in
      body.append(contentsOf: data)
      return body.count
    }
    if size > settings.maxBytes { cancel(with: tooLarge(Int64(size))) }
  }

  func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
    let (continuation, timer, failure, page) = lock.withLock {
      defer { self.continuation = nil }
      return (self.continuation, self.timer, self.failure, Page(body: body, charset: charset))
    }
    timer?.cancel()
    if let failure {
      continuation?.resume(throwing: failure)
    } else if let error {
      continuation?.resume(throwing: HandlerError(.unavailable, "fetching \(url) failed: \(error.localizedDescription)"))
    } else {
      continuation?.resume(returning: page)
    }
  }

  private func tooLarge(_ size: Int64) -> HandlerError {
    HandlerError(.resourceExhausted, "the page at \(url) is larger than \(settings.maxBytes) bytes (CRAWLER_MAX_BYTES)")
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
