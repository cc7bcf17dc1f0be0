import XCTest
import FWTestSupport

/// An apply that fails changes nothing: the live ruleset stays byte-identical, counter
/// values aside (fwctl's own DNS queries from the sandbox count in its allow rules).
final class FailedApplyTests: LabTestCase {
    /// A required name that does not resolve: exit 3, naming it; with no fwctl table yet
    /// and with one applied. The failing policy also allows a port the applied one does
    /// not, so applying the part that did resolve would show.
    func testUnresolvableRequiredNameExits3AndChangesNothing() throws {
        try loadDockerTable()
        let failing = try write(ApplyTests.changed.allowing(#"host = "missing.lab.test""#), as: "failing.toml")
        for state in ["no fwctl table", "a table applied"] {
            if state == "a table applied" { try apply(try write(LabPolicy())) }
            let before = try lab.nftList()
            let r = try fwctl("apply", failing)
            XCTAssertEqual(r.status, 3, "\(state): \(r.stdout)\(r.stderr)")
            XCTAssertTrue(r.stderr.contains("missing.lab.test"), "\(state): \(r.stderr)")
            try assertRulesetUnchanged(since: before, state)
        }
    }

    /// The kernel refuses: another process owns a table named like fwctl's (`flags owner`),
    /// so replacing it is EPERM. apply exits 4 and so does --check, which asks the same
    /// kernel; nothing changes.
    func testKernelRefusalExits4AndChangesNothing() throws {
        try loadDockerTable()
        try lab.holdOwnedTable(family: "inet", name: "fwctl")
        let before = try lab.nftList()
        let policy = try write(LabPolicy())
        for check in [false, true] {
            let r = check ? try fwctl("apply", policy, "--check") : try fwctl("apply", policy)
            let what = check ? "apply --check" : "apply"
            XCTAssertEqual(r.status, 4, "\(what): \(r.stdout)\(r.stderr)")
            XCTAssertTrue(r.stderr.contains("kernel refused"), "\(what): \(r.stderr)")
            try assertRulesetUnchanged(since: before, what)
        }
    }
}
