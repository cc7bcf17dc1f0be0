import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// Runs the command and maps every outcome to the contract's exit codes. ArgumentParser's
/// own usage errors (64) become 2, as the contract says.
do {
    var command = try FWCtl.parseAsRoot()
    try command.run()
} catch let code as ExitCode {
    exit(code.rawValue)
} catch {
    let code = FWCtl.exitCode(for: error)
    if code == .success {
        print(FWCtl.fullMessage(for: error))
        exit(0)
    }
    Output.error(FWCtl.fullMessage(for: error))
    exit(Exit.usage.rawValue)
}
