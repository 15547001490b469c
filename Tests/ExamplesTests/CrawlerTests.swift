import Foundation
import HTMLLinks
import HandlerKit
import Testing

@testable import Examples

/// The crawler's parts without a network; the end-to-end test compares whole pages with
/// BeautifulSoup.
@Suite("crawler")
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

  @Test func settingsComeFromTheEnvironment() throws {
    let settings = try Crawler.Settings(environment: ["CRAWLER_URL": "http://127.0.0.1:1/", "CRAWLER_TIMEOUT": "2.5"])
    #expect(settings.defaultURL == "http://127.0.0.1:1/" && settings.timeout == .milliseconds(2500))
    #expect(try Crawler.Settings(environment: [:]).defaultURL == "http://www.naver.com")
    #expect(throws: HandlerError.self) { try Crawler.Settings(environment: ["CRAWLER_MAX_BYTES": "lots"]) }
  }
}
