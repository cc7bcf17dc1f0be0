import Foundation
import FWPolicy

/// Header rewriting for an entry's `inject`: each named header must be present once and
/// carry the placeholder exactly; it is then replaced by `format` with the secret.
/// Anything else is a `.placeholderMismatch` 403 whose reason names the header and never
/// echoes the value the client sent (it could be a real key).
public struct Injector: Sendable, CustomStringConvertible {
    public let entry: ProxyEntry
    private let secrets: SecretStore

    public init(entry: ProxyEntry, secrets: SecretStore) {
        self.entry = entry
        self.secrets = secrets
    }

    /// Whether there is anything to do.
    public var isEmpty: Bool { entry.inject.isEmpty }

    /// Whether responses are scrubbed for secrets (any secret is loaded): then the upstream
    /// must send bodies the scrubber can read, not compressed ones.
    public var scrubsResponses: Bool { secrets.count > 0 }

    /// `headers` as (name, value) pairs in order, names case-insensitive. Returns the list
    /// with the injected headers rewritten in place, or a refusal. All checks run before any
    /// rewriting, so two injects never see each other's output.
    public func rewrite(_ headers: [(String, String)]) -> Result<[(String, String)], Refusal> {
        guard !entry.inject.isEmpty else { return .success(headers) }
        var replacements: [(index: Int, value: String)] = []
        for (j, inj) in entry.inject.enumerated() {
            let name = inj.header.lowercased()
            let at = headers.indices.filter { headers[$0].0.lowercased() == name }
            let which = "\(entry.label).inject[\(j)]"
            guard let i = at.first else {
                return .failure(Refusal(.placeholderMismatch,
                    "header \(inj.header) is missing; it must carry the placeholder of \(which)"))
            }
            guard at.count == 1 else {
                return .failure(Refusal(.placeholderMismatch,
                    "header \(inj.header) is sent \(at.count) times; it must be sent once, with the placeholder of \(which)"))
            }
            guard headers[i].1 == inj.placeholder else {
                return .failure(Refusal(.placeholderMismatch,
                    "header \(inj.header) does not carry the placeholder of \(which) (the value is not shown)"))
            }
            guard let secret = secrets.value(for: inj) else {
                return .failure(Refusal(.upstreamFailed, "the secret of \(which) (\(inj.secret)) is not loaded"))
            }
            replacements.append((i, Self.apply(format: inj.format, secret: secret)))
        }
        var out = headers
        for r in replacements { out[r.index].1 = r.value }
        return .success(out)
    }

    /// `format` with its one "{}" replaced by the secret.
    static func apply(format: String, secret: [UInt8]) -> String {
        let value = String(decoding: secret, as: UTF8.self)
        guard let r = format.range(of: "{}") else { return value }
        return format.replacingCharacters(in: r, with: value)
    }

    public var description: String {
        "Injector(\(entry.label): \(entry.inject.map { "\($0.header) <- \($0.secret)" }.joined(separator: ", ")))"
    }
}
