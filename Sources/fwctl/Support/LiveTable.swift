import FWNetlink
import FWRuleset

/// The live table. TEMPORARY: answers "no table" until FWNetlink's reader lands.
enum LiveTable {
    static func read(table: String) throws(NetlinkError) -> Ruleset? { nil }
}
