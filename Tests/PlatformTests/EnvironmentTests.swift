import Platform
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct EnvironmentTests {
    @Test func aBlockReadsAsNamesAndValues() {
        let variables = withBlock(["PATH=/usr/bin", "EMPTY=", "QUERY=a=b&c=d", "NO_EQUALS_SIGN", "PATH=/bin"]) {
            Environment.variables(in: $0)
        }
        // The value keeps every '=' after the first; the last of a repeated name wins.
        #expect(variables == ["PATH": "/bin", "EMPTY": "", "QUERY": "a=b&c=d"])
    }

    @Test func noBlockAndAnEmptyBlockHaveNoVariables() {
        #expect(Environment.variables(in: nil).isEmpty)
        #expect(withBlock([]) { Environment.variables(in: $0) }.isEmpty)
    }

    @Test func theProcessEnvironmentReadsAsGetenvSeesIt() {
        let current = Environment.current
        #expect(!current.isEmpty)
        for (name, value) in current {
            #expect(getenv(name).map { String(cString: $0) } == value, "\(name)")
        }
    }
}

/// Calls `body` with a NULL-terminated `char**` of `entries`, as libfcgi and `environ` hold them.
private func withBlock<Result>(_ entries: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result) -> Result {
    let block: [UnsafeMutablePointer<CChar>?] = entries.map { strdup($0) } + [nil]
    defer { for entry in block { free(entry) } }
    return block.withUnsafeBufferPointer { body($0.baseAddress!) }
}
