import Foundation
import HTMLLinks
import HandlerKit
import Testing

@testable import Examples

/// The crawler's parts, and its fetch stopping when the call is cancelled; the end-to-end test
/// compares whole pages with BeautifulSoup and checks the fetch's failures.
@Suite("crawler", .timeLimit(.minutes(1)))
struct CrawlerTests {
  func texts(_ html: String, encoding: String = "UTF-8") -> [String] {
    IssueLinks.texts(html: Array(html.utf8), encoding: encoding, limit: 20)
  }

  @Test func linksAreMatchedByWholeClassTokens() {
    let html = #"<a class="issue hot">a</a><a class="issues">no</a><a class="Issue">no</a><a class=" x  issue">b</a>"#
    #expect(texts(html) == ["a", "b"])
  }

  @Test func textSkipsCommentsScriptsAndStylesAndShortensBlankRuns() {
    #expect(texts(#"<a class="issue">x<!-- c --><script>s()</script><style>p{}</style>y</a>"#) == ["xy"])
    #expect(texts("<a class=issue>\n  </a><a class=issue>  </a><a class=issue><pre>  </pre></a>") == ["\n", " ", "  "])
  }

  @Test func referencesAreReadAsBeautifulSoupReadsThem() {
    #expect(texts("<a class=issue>&foo; &amp x &#150; &copy2020</a>") == ["&foo & x \u{2013} &copy2020"])
    #expect(texts(#"<a class=issue title="&foo;">&lt;b&gt;</a>"#) == ["<b>"])
  }

  @Test func onlyTheFirstTwentyAreListed() {
    let html = (1...25).map { "<a class=issue>\($0)</a>" }.joined()
    #expect(texts(html) == (1...20).map(String.init))
  }

  @Test func charsetsComeFromTheMetaTag() {
    #expect(Crawler.metaCharset(in: Array(#"<meta charset="EUC-KR">"#.utf8)) == "euc-kr")
    #expect(
      Crawler.metaCharset(in: Array(#"<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">"#.utf8))
        == "shift_jis")
    #expect(Crawler.metaCharset(in: Array("<p>no meta</p>".utf8)) == nil)
  }

  @Test func onlyHTTPURLsAreFetched() async {
    for input in ["file:///etc/passwd", "ftp://127.0.0.1/", "javascript:alert(1)", "no url"] {
      let error = await #expect(throws: HandlerError.self) {
        _ = try await Crawler().handle(Request(input), context: Context())
      }
      #expect(error?.code == .invalidArgument)
    }
  }

  @Test func aCancelledCallStopsItsFetch() async throws {
    // A loopback listener that never answers: the kernel accepts the connection, nobody reads.
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #expect(listener >= 0)
    defer { close(listener) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
        bind(listener, address, length) == 0 && listen(listener, 4) == 0 && getsockname(listener, address, &length) == 0
      }
    }
    #expect(bound)
    let url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/"
    let crawler = Crawler(settings: .init(timeout: .seconds(30)))
    let start = ContinuousClock.now
    let fetch = Task { try await crawler.handle(Request(url), context: Context()) }
    try await Task.sleep(for: .milliseconds(300))
    fetch.cancel()
    let error = await #expect(throws: HandlerError.self) { _ = try await fetch.value }
    #expect(error?.code == .cancelled, "\(String(describing: error))")
    #expect(ContinuousClock.now - start < .seconds(10))
  }

  @Test func settingsComeFromTheEnvironment() throws {
    let settings = try Crawler.Settings(environment: ["CRAWLER_URL": "http://127.0.0.1:1/", "CRAWLER_TIMEOUT": "2.5"])
    #expect(settings.defaultURL == "http://127.0.0.1:1/" && settings.timeout == .milliseconds(2500))
    #expect(try Crawler.Settings(environment: [:]).defaultURL == "http://www.naver.com")
    #expect(throws: HandlerError.self) { try Crawler.Settings(environment: ["CRAWLER_MAX_BYTES": "lots"]) }
  }
}
