/// One finding about a policy file, printed as one line:
/// `policy.toml:14:9: allow[2].cidr[0]: "10.0.0.0/33" is not a valid CIDR (prefix 33 > 32)`.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible, Error {
    public enum Severity: String, Sendable, Hashable { case error, warning }

    public var severity: Severity
    public var file: String
    public var location: SourceLocation?
    public var path: KeyPath?
    public var message: String

    public init(_ severity: Severity, file: String, location: SourceLocation?, path: KeyPath?, message: String) {
        self.severity = severity
        self.file = file
        self.location = location
        self.path = path
        self.message = message
    }

    public var description: String {
        var s = file
        if let l = location { s += ":\(l.line):\(l.column)" }
        s += ": "
        if severity == .warning { s += "warning: " }
        if let p = path { s += "\(p): " }
        return s + message
    }
}

/// The policy could not be used; `diagnostics` holds every error (and warning) found.
public struct PolicyError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// A policy that passed validation, with the warnings found on the way.
public struct LoadedPolicy: Sendable {
    public var policy: Policy
    public var warnings: [Diagnostic]
    /// The file as given on the command line, and its bytes (for hashing later).
    public var path: String
    public var text: String
    let locator: LazySourceLocator

    /// A diagnostic about this policy found after loading (e.g. a name that did not
    /// resolve), located like the reader's own.
    public func diagnostic(_ severity: Diagnostic.Severity, at keyPath: KeyPath, _ message: String) -> Diagnostic {
        Diagnostic(severity, file: path, location: locator.locator.valueLocation(keyPath), path: keyPath, message: message)
    }
}
