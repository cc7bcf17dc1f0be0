import CNetfilter
import FWRuleset

/// NEWRULE: a rule's expressions appended to its chain, its comment in userdata.
enum RuleMessage {
    static func add(_ batch: Batch, table: String, chain: String, index: Int, rule: Rule, exprs: [Expr]) {
        let r = nftnl_rule_alloc()!
        defer { nftnl_rule_free(r) }
        nftnl_rule_set_u32(r, attr(NFTNL_RULE_FAMILY), UInt32(NFPROTO_INET))
        nftnl_rule_set_str(r, attr(NFTNL_RULE_TABLE), table)
        nftnl_rule_set_str(r, attr(NFTNL_RULE_CHAIN), chain)
        for e in exprs { nftnl_rule_add_expr(r, e.build()) }
        if let c = rule.comment, let ud = Userdata.comment(c, type: UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue)) {
            ud.withUnsafeBytes { _ = nftnl_rule_set_data(r, attr(NFTNL_RULE_USERDATA), $0.baseAddress, UInt32($0.count)) }
        }
        batch.add(Int32(NFT_MSG_NEWRULE.rawValue), flags: NLM_F_CREATE | NLM_F_APPEND,
                  label: "rule \(index + 1) of chain \(chain)") { nftnl_rule_nlmsg_build_payload($0, r) }
    }
}
