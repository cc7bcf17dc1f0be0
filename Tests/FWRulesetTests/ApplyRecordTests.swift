import XCTest
import FWRuleset

final class ApplyRecordTests: XCTestCase {
    func testRoundTripThroughTheComment() {
        let r = ApplyRecord(version: "0.1.0", appliedAt: "2026-11-29T18:53:31Z", policySHA256: String(repeating: "ab", count: 32),
                            policyPath: "/etc/fwctl/policy with space.toml")
        XCTAssertEqual(ApplyRecord(comment: r.comment), r)
    }

    func testLongPathsKeepTheirEndAndFitTheKernelLimit() {
        let long = "/" + String(repeating: "d/", count: 200) + "policy.toml"
        let r = ApplyRecord(version: "0.1.0", appliedAt: "2026-11-29T18:53:31Z", policySHA256: String(repeating: "0", count: 64), policyPath: long)
        XCTAssertLessThanOrEqual(r.comment.utf8.count, ApplyRecord.maxLength)
        XCTAssertTrue(r.comment.hasSuffix("d/policy.toml"))
        XCTAssertEqual(ApplyRecord(comment: r.comment)?.policySHA256, r.policySHA256)
    }

    func testForeignCommentsAreNotRecords() {
        XCTAssertNil(ApplyRecord(comment: "managed by hand"))
    }
}
