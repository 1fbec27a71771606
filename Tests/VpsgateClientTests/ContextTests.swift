import ArgumentParser
import Testing
import VpsgateCore
@testable import VpsgateClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Contexts in the config file, in a temporary directory of each test's own.
@Suite struct ContextTests {
    /// A new private directory; its config file path.
    func temporaryConfig() -> (directory: String, path: String) {
        var template = Array("/tmp/vpsgatectl-contexts-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        return (directory, directory + "/vpsgate/config")
    }

    func write(_ text: String, to path: String, mode: mode_t = 0o600) {
        try? ContextConfig.makeDirectory(String(path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")))
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        _ = Array(text.utf8).withUnsafeBytes { writeDescriptor(descriptor, $0.baseAddress!, $0.count) }
        fchmod(descriptor, mode)
        close(descriptor)
    }

    func mode(_ path: String) -> mode_t {
        var status = stat()
        stat(path, &status)
        return status.st_mode & 0o777
    }

    @Test func theConfigFileIsFoundWhereXDGSays() {
        #expect(ContextConfig.path(environment: ["HOME": "/home/a"]) == "/home/a/.config/vpsgate/config")
        #expect(ContextConfig.path(environment: ["HOME": "/home/a", "XDG_CONFIG_HOME": "/x"]) == "/x/vpsgate/config")
        #expect(ContextConfig.path(environment: ["HOME": "/home/a", "XDG_CONFIG_HOME": "relative"]) == "/home/a/.config/vpsgate/config")
        #expect(ContextConfig.path(environment: ["HOME": "/home/a", "VPSGATECTL_CONFIG": "/etc/c"]) == "/etc/c")
    }

    @Test func theSingleProfileFormatIsTheContextDefault() throws {
        let config = ContextConfig.parse("# old\nVPSGATE_URL=https://a.example\nVPSGATE_TOKEN_FILE=/t\n")
        #expect(config.current == "default")
        #expect(config.contexts.map(\.name) == ["default"])
        #expect(config.context("default")?["VPSGATE_URL"] == "https://a.example")
        #expect(config.text == """
            # vpsgatectl's contexts (vpsgatectl context --help). Written by vpsgatectl: where tokens are, not tokens.
            current-context=default

            [context default]
            VPSGATE_URL=https://a.example
            VPSGATE_TOKEN_FILE=/t

            """)
        #expect(ContextConfig.parse(config.text) == config)
    }

    @Test func addUseListRemoveWriteAPrivateFileAndNeverShowAToken() throws {
        let (directory, path) = temporaryConfig()
        defer { _ = system("rm -rf '\(directory)'") }
        var config = ContextConfig()
        var prod = ContextConfig.Context(name: "prod")
        prod["VPSGATE_URL"] = "https://vpsgate.example.com"
        prod["VPSGATE_TOKEN_FILE"] = "/home/me/prod.token"
        config.contexts.append(prod)
        config.current = "prod"
        var lab = ContextConfig.Context(name: "lab")
        lab["VPSGATE_URL"] = "http://127.0.0.1:8080"
        lab["VPSGATE_TOKEN_ENV"] = "LAB_TOKEN"
        config.contexts.append(lab)
        try config.save(path)
        #expect(mode(path) == 0o600)
        #expect(try ContextConfig.load(path) == config)
        #expect(try ContextCommand.listing(config, output: "table") == """
            CURRENT   NAME   URL                           TOKEN                      CA
            *         prod   https://vpsgate.example.com   file /home/me/prod.token   -
                      lab    http://127.0.0.1:8080         env LAB_TOKEN              -
            """)

        // The current context, another by name, the environment's token by name.
        let environment = ["VPSGATECTL_CONFIG": path, "LAB_TOKEN": "secret-lab", "VPSGATE_TOKEN": "from-env"]
        let current = try ContextConfig.values(environment: environment, explicit: nil)
        #expect(current.context == "prod" && current.values["VPSGATE_URL"] == "https://vpsgate.example.com")
        let chosen = try ClientSettings.load(environment: environment, context: "lab")
        #expect(chosen.url == "http://127.0.0.1:8080" && chosen.token == "secret-lab" && chosen.context == "lab")
        // Without --context the environment wins, as before contexts; with it, the context.
        #expect(try ClientSettings.load(environment: environment.merging(["VPSGATE_URL": "https://other.example"]) { $1 }, context: nil).url
            == "https://other.example")
        #expect(try ClientSettings.load(environment: environment.merging(["VPSGATE_URL": "https://other.example"]) { $1 }, context: "lab").url
            == "http://127.0.0.1:8080")
        #expect(throws: UsageError.self) { try ClientSettings.load(environment: environment, context: "nope") }
        #expect(throws: UsageError.self) { try ClientSettings.load(environment: ["VPSGATECTL_CONFIG": path], context: "lab") }

        config.contexts.removeAll { $0.name == "prod" }
        config.current = nil
        try config.save(path)
        #expect(mode(path) == 0o600)
        #expect(try ContextConfig.load(path).contexts.map(\.name) == ["lab"])
    }

    @Test func aConfigOthersCanReadIsRefused() {
        let (directory, path) = temporaryConfig()
        defer { _ = system("rm -rf '\(directory)'") }
        write("VPSGATE_URL=https://a.example\nVPSGATE_TOKEN=t\n", to: path, mode: 0o644)
        #expect(throws: UsageError.self) { try ContextConfig.load(path) }
    }

    @Test func theGlobalOptionsAreTakenOutWhereverTheyStand() throws {
        let (options, rest) = try GlobalOptions.extract(["--context", "lab", "vps", "list", "--columns=id,hostname", "--no-header", "-o", "table"])
        #expect(options == GlobalOptions(context: "lab", columns: "id,hostname", header: false))
        #expect(rest == ["vps", "list", "-o", "table"])
        #expect(try GlobalOptions.extract(["vps", "--", "--context", "x"]).1 == ["vps", "--", "--context", "x"])
        #expect(throws: UsageError.self) { try GlobalOptions.extract(["me", "--context"]) }
    }

    @Test func contextAddRefusesATokenOnTheCommandLineAndBadNames() {
        #expect(throws: (any Error).self) { try VpsgateCtl.parseAsRoot(["context", "add", "p", "--url", "https://a.example"]) }
        #expect(throws: (any Error).self) {
            try VpsgateCtl.parseAsRoot(["context", "add", "p", "--url", "https://a.example", "--token-file", "/t", "--token-env", "T"])
        }
        #expect(throws: (any Error).self) { try VpsgateCtl.parseAsRoot(["context", "add", "a b", "--url", "https://a.example", "--token-env", "T"]) }
        #expect(throws: (any Error).self) { try VpsgateCtl.parseAsRoot(["context", "add", "p", "--url", "http://10.0.0.1", "--token-env", "T"]) }
        #expect(throws: (any Error).self) { try VpsgateCtl.parseAsRoot(["context", "add", "p", "--url", "https://a\nb", "--token-env", "T"]) }
        #expect((try? VpsgateCtl.parseAsRoot(["context", "add", "p", "--url", "https://a.example", "--token-env", "T"])) != nil)
    }
}
