import Foundation
import HTMLLinks
import HandlerKit
import PageFetch

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
    let page = try await PageFetcher(
      timeout: settings.timeout, maxBytes: settings.maxBytes, maxRedirects: settings.maxRedirects
    ).fetch(url)
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
