import Testing

@testable import Watcher

@Suite("Conformance lookups ahead")
struct ConformanceLookupsTests {
  @Test func nioPosixsInternalTypesAreFoundByTheirNames() {
    // A NIO release that renames them would leave their questions to the first call: noticed here.
    for name in ConformanceLookups.internalTypeNames.handlers + ConformanceLookups.internalTypeNames.channels {
      #expect(_typeByName(name) != nil, "\(name)")
    }
    #expect(ConformanceLookups.internalTypeNames.handlers.allSatisfy {
      _typeByName($0).map(ConformanceLookups.handlesInbound) == true
    }, "the accept handler handles inbound events")
    ConformanceLookups.lookUpAhead()
  }
}
