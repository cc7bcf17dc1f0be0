import Foundation

/// The replayer every fuzz target links in a normal build (without libFuzzer): runs each
/// file given, or each file in each directory given, through the target's entry point,
/// in name order. A crash or a failed check stops it like any other trap.
public func replayInputs(_ paths: [String], target: String, _ fuzzOne: (UnsafePointer<UInt8>?, Int) -> CInt) {
    var count = 0
    for path in paths {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            FileHandle.standardError.write(Data("no such file: \(path)\n".utf8))
            exit(2)
        }
        let files = isDir.boolValue
            ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
            : [path]
        for file in files {
            let bytes = [UInt8](FileManager.default.contents(atPath: file) ?? Data())
            _ = bytes.withUnsafeBufferPointer { fuzzOne($0.baseAddress, $0.count) }
            count += 1
        }
    }
    print("\(target): \(count) input(s) replayed, no crash")
}
