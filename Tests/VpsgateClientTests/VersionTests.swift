import ArgumentParser
import MCP
import Testing
import VpsgateCore
@testable import VpsgateClient

/// One version everywhere (docs/getting-started.md#versions): `vpsgatectl --version`, its
/// `User-Agent` and the MCP server's info all come from `BuildInfo`.
@Suite struct VersionTests {
    @Test func versionLineNamesTheProgramTheVersionTheCommitAndTheDate() {
        #expect(BuildInfo.versionLine(program: "vpsgatectl") == "vpsgatectl \(BuildInfo.version) (commit \(BuildInfo.commit), built \(BuildInfo.date))")
        #expect(BuildInfo.userAgent("vpsgatectl") == "vpsgatectl/\(BuildInfo.version)")
        #expect(!BuildInfo.version.isEmpty && !BuildInfo.version.contains(" "))
    }

    @Test func vpsgatectlAnswersVersionWithTheBuildInfoLine() {
        #expect(VpsgateCtl.configuration.version == BuildInfo.versionLine(program: "vpsgatectl"))
        do {
            _ = try VpsgateCtl.parseAsRoot(["--version"])
            Issue.record("--version parsed as a command")
        } catch {
            #expect(VpsgateCtl.fullMessage(for: error) == BuildInfo.versionLine(program: "vpsgatectl"))
        }
    }

    @Test func theMCPServerReportsTheSameVersion() async {
        let server = await MCPCommand.server(ToolCatalogueServer(api: StandInVpsgate(grants: [])))
        #expect(server.version == BuildInfo.version)
    }
}
