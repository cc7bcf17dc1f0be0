import TOMLKit

/// The parsed TOML as plain Swift values, so validation does not deal with TOMLKit's
/// C++-backed types. Tables keep no order; diagnostics are sorted by location instead.
indirect enum TOMLNode {
    case table([String: TOMLNode])
    case array([TOMLNode])
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case other(String) // dates and times: never valid in a policy

    /// How an error message names this kind of value.
    var kindName: String {
        switch self {
        case .table: return "a table"
        case .array: return "an array"
        case .string(let s): return "string \"\(s)\""
        case .integer(let i): return "integer \(i)"
        case .float(let d): return "float \(d)"
        case .boolean(let b): return "boolean \(b)"
        case .other(let t): return "a \(t)"
        }
    }
}

enum TOMLDocument {
    struct SyntaxError: Error {
        var location: SourceLocation
        var message: String
    }

    static func parse(_ text: String) -> Result<TOMLNode, SyntaxError> {
        if let refused = TOMLPrecheck.check(text) { return .failure(refused) }
        do {
            let table = try TOMLTable(string: text)
            return .success(convert(table))
        } catch let e as TOMLParseError {
            let loc = SourceLocation(line: e.source.begin.line, column: e.source.begin.column)
            return .failure(SyntaxError(location: loc, message: "TOML syntax error: \(e.description)"))
        } catch {
            return .failure(SyntaxError(location: SourceLocation(line: 1, column: 1),
                                        message: "TOML syntax error: \(error)"))
        }
    }

    private static func convert(_ v: TOMLValueConvertible) -> TOMLNode {
        switch v.type {
        case .table:
            let t = v.table!
            var out: [String: TOMLNode] = [:]
            for k in t.keys { if let child = t[k] { out[k] = convert(child) } }
            return .table(out)
        case .array:
            return .array(v.array!.map { convert($0) })
        case .string: return .string(v.string ?? "")
        case .int: return .integer(v.int ?? 0)
        case .double: return .float(v.double ?? 0)
        case .bool: return .boolean(v.bool ?? false)
        case .date: return .other("date")
        case .time: return .other("time")
        case .dateTime: return .other("date-time")
        }
    }
}
