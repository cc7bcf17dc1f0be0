/// A CA failure as one readable line: the file concerned and what is wrong with it.
/// Never carries key material: messages are written here, not copied from parsers.
public struct CAError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
