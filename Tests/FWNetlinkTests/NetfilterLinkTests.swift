import XCTest
import FWNetlink

final class NetfilterLinkTests: XCTestCase {
    /// libnftnl and libmnl are linked and usable from Swift.
    func testLibrariesLink() {
        XCTAssertTrue(Netfilter.selfTest(tableName: "fwctl"))
    }
}
