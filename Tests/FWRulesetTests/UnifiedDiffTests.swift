import XCTest
import FWRender

final class UnifiedDiffTests: XCTestCase {
    let diff = UnifiedDiff(context: 1)

    func testEqualTextsGiveNothing() {
        XCTAssertEqual(diff.render(old: "a\nb\n", new: "a\nb\n", oldLabel: "x", newLabel: "y"), "")
    }

    func testChangesWithContextAndHunkHeaders() {
        let old = "a\nb\nc\nd\ne\nf\ng\n"
        let new = "a\nB\nc\nd\ne\nf\ng\nh\n"
        XCTAssertEqual(diff.render(old: old, new: new, oldLabel: "live", newLabel: "policy"), """
        --- live
        +++ policy
        @@ -1,3 +1,3 @@
         a
        -b
        +B
         c
        @@ -7,1 +7,2 @@
         g
        +h

        """)
    }

    func testFromNothing() {
        XCTAssertEqual(diff.render(old: "", new: "x\ny\n", oldLabel: "a", newLabel: "b"), "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n")
    }

    func testToNothing() {
        XCTAssertEqual(diff.render(old: "x\n", new: "", oldLabel: "a", newLabel: "b"), "--- a\n+++ b\n@@ -1,1 +0,0 @@\n-x\n")
    }

    /// The edit script is minimal: every line kept that can be kept.
    func testScriptIsMinimal() {
        let a = (0..<200).map { "line \($0)" }
        var b = a
        b.remove(at: 50); b.insert("new", at: 120); b[180] = "changed"
        let text = diff.render(old: a.joined(separator: "\n") + "\n", new: b.joined(separator: "\n") + "\n", oldLabel: "a", newLabel: "b")
        let changed = text.split(separator: "\n").filter { ($0.hasPrefix("-") || $0.hasPrefix("+")) && !$0.hasPrefix("---") && !$0.hasPrefix("+++") }
        XCTAssertEqual(changed.count, 4)
    }
}
