import Foundation

/// Certificates for tests that need real TLS: made with openssl, valid for a day.
public enum TestCertificates {
    /// A test CA (ca.pem) and an upstream certificate signed by it for `names`.
    public static func makeUpstream(in dir: URL, names: [String]) throws {
        let openssl = try tool("openssl")
        func p(_ n: String) -> String { dir.appendingPathComponent(n).path }
        try ("subjectAltName=" + names.map { "DNS:\($0)" }.joined(separator: ",") + "\n")
            .write(toFile: p("san.cnf"), atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
             "-subj", "/CN=fwctl test upstream CA", "-keyout", p("ca.key"), "-out", p("ca.pem")],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=\(names[0])",
             "-keyout", p("upstream.key"), "-out", p("upstream.csr")],
            ["x509", "-req", "-in", p("upstream.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
             "-days", "1", "-extfile", p("san.cnf"), "-out", p("upstream.pem")],
        ]
        for args in steps {
            let r = try run(openssl, args)
            guard r.status == 0 else { throw DaemonError("openssl \(args[0]): \(r.stderr)") }
        }
    }

}
