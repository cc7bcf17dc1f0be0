import Foundation

/// A saved GitHub `/meta` document: fwctl takes its `web`, `api` and `git` ranges (IPv4 and
/// IPv6) and merges overlapping and adjacent prefixes.
public enum GitHubMeta {
    public static let keys = ["web", "api", "git"]

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func load(_ file: String, relativeTo base: String) -> Result<[CIDR], LoadError> {
        let full = file.hasPrefix("/") ? file : (base as NSString).appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: full) else {
            return .failure(LoadError(description: "cannot read \"\(file)\" (looked at \(full)); save it with: curl -fsS https://api.github.com/meta -o \(file)"))
        }
        return parse(data, name: file)
    }

    public static func parse(_ data: Data, name: String) -> Result<[CIDR], LoadError> {
        guard let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
            return .failure(LoadError(description: "\"\(name)\" is not a JSON object (expected GitHub's /meta document)"))
        }
        let missing = keys.filter { dict[$0] == nil }
        if !missing.isEmpty {
            return .failure(LoadError(description: "\"\(name)\" has no \(missing.map { "\"\($0)\"" }.joined(separator: ", ")) key (expected GitHub's /meta document with web, api and git ranges)"))
        }
        var cidrs: [CIDR] = []
        for key in keys {
            guard let list = dict[key] as? [String] else {
                return .failure(LoadError(description: "\"\(name)\": \"\(key)\" is not a list of CIDR strings"))
            }
            for s in list {
                switch CIDR.parse(s) {
                case .success(let c): cidrs.append(c)
                case .failure(let e): return .failure(LoadError(description: "\"\(name)\": \(key): \(e.description)"))
                }
            }
        }
        if cidrs.isEmpty {
            return .failure(LoadError(description: "\"\(name)\": web, api and git hold no ranges"))
        }
        return .success(CIDRSet.merge(cidrs))
    }
}
