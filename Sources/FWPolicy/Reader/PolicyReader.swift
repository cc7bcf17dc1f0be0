import Foundation

/// Reads and validates a policy file: TOML -> typed `Policy`, or every error at once.
public enum PolicyReader {
    /// Loads `path` (as the user wrote it; diagnostics name it so).
    public static func load(path: String) throws(PolicyError) -> LoadedPolicy {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let s = String(data: data, encoding: .utf8) else {
                throw PolicyError([Diagnostic(.error, file: path, location: nil, path: nil,
                                              message: "cannot read: the file is not UTF-8 text")])
            }
            text = s
        } catch let e as PolicyError {
            throw e
        } catch {
            throw PolicyError([Diagnostic(.error, file: path, location: nil, path: nil,
                                          message: "cannot read: \(readableIOError(error, path: path))")])
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(text: text, file: path, baseDirectory: base)
    }

    /// Parses policy text. `file` is only used to name the source in diagnostics;
    /// `baseDirectory` anchors relative paths (github_meta).
    public static func parse(text: String, file: String, baseDirectory: String) throws(PolicyError) -> LoadedPolicy {
        let root: TOMLNode
        switch TOMLDocument.parse(text) {
        case .success(let n): root = n
        case .failure(let e):
            throw PolicyError([Diagnostic(.error, file: file, location: e.location, path: nil, message: e.message)])
        }
        let ctx = ReadContext(file: file, text: text, baseDirectory: baseDirectory)
        let policy = PolicyDecoder(ctx: ctx).decode(root)
        let diags = ctx.sortedDiagnostics
        if ctx.hasErrors { throw PolicyError(diags) }
        return LoadedPolicy(policy: policy, warnings: diags, path: file, text: text, locator: ctx.lazyLocator)
    }

    static func readableIOError(_ error: Error, path: String) -> String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            return isDir.boolValue ? "is a directory, not a policy file" : "permission denied"
        }
        return "no such file"
    }
}
