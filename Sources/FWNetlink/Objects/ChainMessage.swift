import CNetfilter
import FWRuleset

/// NEWCHAIN: a base chain with its hook, priority and policy, or a regular chain.
enum ChainMessage {
    static func hookNumber(_ h: Chain.Hook) -> UInt32 {
        switch h {
        case .prerouting: return 0
        case .input: return 1
        case .forward: return 2
        case .output: return 3
        case .postrouting: return 4
        }
    }

    static func add(_ batch: Batch, table: String, _ c: Chain) {
        let ch = nftnl_chain_alloc()!
        defer { nftnl_chain_free(ch) }
        nftnl_chain_set_u32(ch, attr(NFTNL_CHAIN_FAMILY), UInt32(NFPROTO_INET))
        nftnl_chain_set_str(ch, attr(NFTNL_CHAIN_TABLE), table)
        nftnl_chain_set_str(ch, attr(NFTNL_CHAIN_NAME), c.name)
        if let b = c.base {
            nftnl_chain_set_str(ch, attr(NFTNL_CHAIN_TYPE), b.type.rawValue)
            nftnl_chain_set_u32(ch, attr(NFTNL_CHAIN_HOOKNUM), hookNumber(b.hook))
            nftnl_chain_set_s32(ch, attr(NFTNL_CHAIN_PRIO), Int32(b.priority))
            nftnl_chain_set_u32(ch, attr(NFTNL_CHAIN_POLICY), b.policy == .accept ? 1 : 0)
        }
        batch.add(Int32(NFT_MSG_NEWCHAIN.rawValue), flags: NLM_F_CREATE, label: "chain \(c.name)") {
            nftnl_chain_nlmsg_build_payload($0, ch)
        }
    }
}
