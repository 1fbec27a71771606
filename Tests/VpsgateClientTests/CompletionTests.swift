import Testing
import VpsgateCore
@testable import VpsgateClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Completion scripts: every catalogue command and its flags, for bash, zsh and fish, and
/// scripts the shells accept.
@Suite struct CompletionTests {
    /// Runs `command` with sh; its standard output and exit status.
    func shell(_ command: String) -> (String, Int32) {
        guard let pipe = popen(command + " 2>&1", "r") else { return ("", -1) }
        var output = ""
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), pipe) != nil {
            output += String(cString: buffer)
        }
        let status = pclose(pipe)
        return (output, (status >> 8) & 0xff)
    }

    func saved(_ text: String, _ name: String) -> String {
        let path = "/tmp/vpsgatectl-completion-\(getpid())-\(name)"
        let file = fopen(path, "w")!
        fputs(text, file)
        fclose(file)
        return path
    }

    func has(_ program: String) -> Bool { shell("command -v \(program) >/dev/null").1 == 0 }

    @Test func theTableHasEveryCatalogueCommandWithItsFlagsAndEveryRead() {
        let table = Dictionary(uniqueKeysWithValues: Completion.table().map { ($0.key, $0.words) })
        for command in Command.catalogue {
            let words = command.name.split(separator: ".").map(String.init)
            let flags = table[words.joined(separator: " ")] ?? []
            for field in command.fields { #expect(flags.contains(Invocation.flag(field.name)), "\(command.name) \(field.name)") }
            for parameter in Invocation.pathParameters(command) { #expect(flags.contains(Invocation.flag(parameter))) }
            #expect(flags.contains("--yes") && flags.contains("--plan") && flags.contains("--context"), "\(command.name)")
            #expect(table[words.dropLast().joined(separator: " ")]?.contains(words.last!) == true, "\(command.name)")
        }
        for route in ReadRoute.allCases {
            guard let (group, verb) = route.command, group != "catalogue" else { continue }
            #expect(table[group]?.contains(verb) == true, "\(group) \(verb)")
        }
        // The fixed subcommands come from ArgumentParser's own description of them.
        #expect(table[""]?.starts(with: ["vps", "firewall"]) == true)
        #expect(["context", "completion", "operations", "me", "mcp"].allSatisfy { table[""]?.contains($0) == true })
        #expect(table["context"]?.starts(with: ["add", "use", "list", "remove"]) == true)
        #expect(table["context add"]?.contains("--token-file") == true && table["context add"]?.contains("--ca") == true)
        #expect(table["operations list"]?.contains("--vps") == true && table["operations list"]?.contains("-o") == true)
        #expect(table["vps hostname set"]?.contains("--hostname") == true)
        #expect(table["firewall rule create"]?.contains("--protocol") == true)
    }

    @Test(arguments: ["bash", "zsh", "fish"]) func eachScriptNamesEveryCommandAndFlag(_ shell: String) throws {
        let script = try #require(Completion.script(shell))
        for command in Command.catalogue {
            let words = command.name.split(separator: ".").map(String.init)
            #expect(script.contains("'\(words.joined(separator: " "))'"), "\(shell): \(command.name)")
            for field in command.fields { #expect(script.contains(Invocation.flag(field.name)), "\(shell): \(command.name) \(field.name)") }
        }
        #expect(Completion.script("powershell") == nil)
    }

    @Test func theShellsAcceptTheScripts() throws {
        let bash = saved(Completion.bash(), "bash")
        defer { unlink(bash) }
        #expect(shell("bash -n \(bash)").1 == 0)
        // The bash completer, run: what `vpsgatectl vps hostname s<TAB>` and `… set 1001 --h<TAB>` offer.
        let (offered, status) = shell("""
            bash -c 'source \(bash); COMP_WORDS=(vpsgatectl vps hostname s); COMP_CWORD=3; _vpsgatectl; echo "${COMPREPLY[*]}"; \
            COMP_WORDS=(vpsgatectl --context lab vps hostname set 1001 --h); COMP_CWORD=7; _vpsgatectl; echo "${COMPREPLY[*]}"'
            """)
        #expect(status == 0)
        #expect(offered == "set\n--hostname --help\n", "\(offered)")
        if has("zsh") {
            let zsh = saved(Completion.zsh(), "zsh")
            defer { unlink(zsh) }
            #expect(shell("zsh -n \(zsh)").1 == 0)
        }
        if has("fish") {
            let fish = saved(Completion.fish(), "fish")
            defer { unlink(fish) }
            #expect(shell("fish --no-execute \(fish)").1 == 0)
        }
    }
}
