import ArgumentParser
import Platform
import VpsgateCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The options every command takes, wherever they stand on the line (`vpsgatectl --context
/// prod vps list` and `vpsgatectl vps list --context prod` alike): taken out of the
/// arguments before they are parsed, since the catalogue's commands parse their own words.
struct GlobalOptions: Equatable, Sendable {
    /// `--context NAME` (or `VPSGATECTL_CONTEXT`): the context to use instead of the current one.
    var context: String?
    /// `--columns a,b.c`.
    var columns: String?
    /// `--no-header` clears it.
    var header = true

    /// The options of this process (set once, by `VpsgateCtl.runProcess`, before any command runs).
    nonisolated(unsafe) static var current = GlobalOptions()

    /// The options in `arguments`, and the arguments without them. Words after `--` are
    /// left alone.
    static func extract(_ arguments: [String]) throws(UsageError) -> (GlobalOptions, [String]) {
        var options = GlobalOptions()
        var rest: [String] = []
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            if word == "--" {
                rest += arguments[index...]
                break
            }
            let (flag, inline) = word.splitFlag
            switch flag {
            case "--context", "--columns":
                guard let value = inline ?? arguments[safe: index + 1], !value.isEmpty else { throw UsageError("\(flag) needs a value") }
                if flag == "--context" { options.context = value } else { options.columns = value }
                index += inline == nil ? 2 : 1
            case "--no-header":
                options.header = false
                index += 1
            default:
                rest.append(word)
                index += 1
            }
        }
        return (options, rest)
    }
}

/// The config file: named contexts, each a vpsgate and the way to its token, and which one
/// is current. `$VPSGATECTL_CONFIG`, else `$XDG_CONFIG_HOME/vpsgate/config`, else
/// `~/.config/vpsgate/config`:
///
///     current-context=prod
///
///     [context prod]
///     VPSGATE_URL=https://vpsgate.example.com
///     VPSGATE_TOKEN_FILE=/home/me/.config/vpsgate/prod.token
///     VPSGATE_CA_FILE=/etc/ssl/example-ca.pem
///
/// `VPSGATE_TOKEN_ENV=NAME` reads the token from the environment variable NAME instead.
/// `KEY=value` lines before any section (the single-profile format of earlier versions)
/// are the context `default`. The file holds where tokens are, never a token that
/// `context add` was given; it is written private (0600), whole, by rename.
struct ContextConfig: Equatable {
    struct Context: Equatable {
        var name: String
        /// `VPSGATE_URL`, `VPSGATE_TOKEN_FILE`, … in the file's order.
        var values: [(key: String, value: String)] = []

        static func == (lhs: Context, rhs: Context) -> Bool {
            lhs.name == rhs.name && lhs.values.elementsEqual(rhs.values) { $0.key == $1.key && $0.value == $1.value }
        }

        subscript(key: String) -> String? {
            get { values.last { $0.key == key }?.value }
            set {
                values.removeAll { $0.key == key }
                if let newValue { values.append((key, newValue)) }
            }
        }

        /// Where the token comes from, never the token: for `context list`.
        var tokenSource: String {
            if let file = self["VPSGATE_TOKEN_FILE"] { return "file " + file }
            if let variable = self["VPSGATE_TOKEN_ENV"] { return "env " + variable }
            if self["VPSGATE_TOKEN"] != nil { return "in the config file" }
            return "-"
        }
    }

    var current: String?
    var contexts: [Context] = []

    /// The context named `name`.
    func context(_ name: String) -> Context? { contexts.first { $0.name == name } }

    /// Where the config file is.
    static func path(environment: [String: String]) -> String {
        if let path = environment["VPSGATECTL_CONFIG"], !path.isEmpty { return path }
        if let base = environment["XDG_CONFIG_HOME"], base.hasPrefix("/") { return base + "/vpsgate/config" }
        return environment["HOME"].map { $0 + "/.config/vpsgate/config" } ?? ""
    }

    /// The file's text as contexts; lines it does not know are kept out (comments, blanks).
    static func parse(_ text: String) -> ContextConfig {
        var config = ContextConfig()
        var section: Int?
        for raw in text.split(separator: "\n") {
            let line = String(raw).trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[context "), line.hasSuffix("]") {
                let name = String(line.dropFirst("[context ".count).dropLast()).trimmingSpaces
                if let existing = config.contexts.firstIndex(where: { $0.name == name }) {
                    section = existing
                } else {
                    config.contexts.append(Context(name: name))
                    section = config.contexts.count - 1
                }
                continue
            }
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let (key, value) = (String(parts[0]).trimmingSpaces, String(parts[1]).trimmingSpaces)
            if section == nil, key == "current-context" {
                config.current = value
                continue
            }
            let index: Int
            if let section {
                index = section
            } else if let existing = config.contexts.firstIndex(where: { $0.name == "default" }) {
                index = existing
            } else {
                config.contexts.insert(Context(name: "default"), at: 0)
                index = 0
            }
            config.contexts[index][key] = value
        }
        // A file of the single-profile format: its one context is the one in use.
        if config.current == nil, config.contexts.count == 1, config.contexts[0].name == "default" { config.current = "default" }
        return config
    }

    /// The file's text.
    var text: String {
        var lines = ["# vpsgatectl's contexts (vpsgatectl context --help). Written by vpsgatectl: where tokens are, not tokens."]
        if let current { lines.append("current-context=\(current)") }
        for context in contexts {
            lines.append("")
            lines.append("[context \(context.name)]")
            lines += context.values.map { "\($0.key)=\($0.value)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The config file at `path`, or an empty one when there is none.
    static func load(_ path: String) throws -> ContextConfig {
        try readPrivateFile(path, "the config file").map(parse) ?? ContextConfig()
    }

    /// Writes the file: to a new private file beside it, flushed, then renamed over it, so a
    /// reader sees the old file or the new one, never half of one, and never a readable one.
    func save(_ path: String) throws {
        guard !path.isEmpty else { throw UsageError("no config file: set HOME, XDG_CONFIG_HOME or VPSGATECTL_CONFIG") }
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !directory.isEmpty { try Self.makeDirectory(directory) }
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw UsageError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { writeDescriptor(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                close(descriptor)
                unlink(temporary)
                throw UsageError("cannot write \(temporary): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        // The mode is set again in case a umask took bits away from 0600 (it cannot add any).
        guard fchmod(descriptor, 0o600) == 0, fsync(descriptor) == 0, close(descriptor) == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw UsageError("cannot write \(path): \(reason)")
        }
    }

    /// `mkdir -p` with mode 0700 for what it creates.
    static func makeDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw UsageError("cannot create \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The `VPSGATE_*` values a command uses: the chosen context's (`--context`,
    /// `VPSGATECTL_CONTEXT`, else the current one) and the environment's. Without an explicit
    /// context the environment wins, as it always has; with one, the context does, so
    /// `--context staging` never goes to an exported `VPSGATE_URL` of production.
    static func values(environment: [String: String], explicit: String?) throws -> (context: String?, values: [String: String]) {
        let config = try load(path(environment: environment))
        let chosen = explicit ?? environment["VPSGATECTL_CONTEXT"].flatMap { $0.isEmpty ? nil : $0 }
        var values: [String: String] = [:]
        var name = chosen ?? config.current
        if let chosen, config.context(chosen) == nil {
            let known = config.contexts.map(\.name).joined(separator: ", ")
            throw UsageError("no context named \(chosen) (\(known.isEmpty ? "there are none: vpsgatectl context add" : "known: " + known))")
        }
        if let name, let context = config.context(name) {
            for (key, value) in context.values { values[key] = value }
        } else {
            name = nil
        }
        if let variable = values["VPSGATE_TOKEN_ENV"] {
            guard let token = environment[variable], !token.isEmpty else {
                throw UsageError("context \(name ?? "") reads its token from $\(variable), which is not set")
            }
            values["VPSGATE_TOKEN"] = token
        }
        for (key, value) in environment where key.hasPrefix("VPSGATE_") && (chosen == nil || values[key] == nil) {
            // An explicit context's own token source is not overridden by another from the environment.
            if chosen != nil, key.hasPrefix("VPSGATE_TOKEN"), values["VPSGATE_TOKEN"] != nil || values["VPSGATE_TOKEN_FILE"] != nil { continue }
            values[key] = value
        }
        return (name, values)
    }
}

/// `vpsgatectl context add|use|list|remove`: named vpsgates, as kubectl's contexts and
/// doctl's auth contexts.
struct ContextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "context", abstract: "Named vpsgates and their tokens: add, use, list, remove (the global --context NAME picks one).",
        subcommands: [Add.self, Use.self, List.self, Remove.self])

    static var configPath: String { ContextConfig.path(environment: Environment.current) }

    /// Names safe on a line of the file and in a shell: letters, digits, `.`, `_`, `-`.
    static func checkName(_ name: String) throws {
        guard (1...64).contains(name.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            throw ValidationError("a context name is 1 to 64 letters, digits, dots, dashes or underscores: \(name)")
        }
    }

    /// A value written on a line of the file: a newline would start another key.
    static func checkValue(_ value: String, _ flag: String) throws {
        guard !value.isEmpty, !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ValidationError("\(flag) must be one line of text")
        }
    }

    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        return String(cString: buffer) + "/" + path
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a context: a vpsgate's URL and where its token is (a file or an environment variable).")
        @Argument var name: String
        @Option(help: "vpsgate's address (https://…).") var url: String
        @Option(help: "A file holding the token (private to you: chmod 600).") var tokenFile: String?
        @Option(help: "An environment variable holding the token.") var tokenEnv: String?
        @Option(help: "A CA certificate file to trust for vpsgate's TLS.") var ca: String?
        func validate() throws {
            try checkName(name)
            try checkValue(url, "--url")
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else { throw ValidationError("--url is vpsgate's address: https://…") }
            do { try ClientSettings.checkPlainHTTP(url) } catch { throw ValidationError("\(error)") }
            guard (tokenFile == nil) != (tokenEnv == nil) else { throw ValidationError("give one of --token-file or --token-env (the token itself is never stored)") }
            if let tokenFile { try checkValue(tokenFile, "--token-file") }
            if let tokenEnv {
                guard tokenEnv.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }), !tokenEnv.isEmpty else {
                    throw ValidationError("--token-env is an environment variable's name")
                }
            }
            if let ca { try checkValue(ca, "--ca") }
        }
        func run() throws {
            try usage {
                let path = ContextCommand.configPath
                var config = try ContextConfig.load(path)
                guard config.context(name) == nil else { throw UsageError("a context named \(name) exists: vpsgatectl context remove \(name) first") }
                var context = ContextConfig.Context(name: name)
                context["VPSGATE_URL"] = url.hasSuffix("/") ? String(url.dropLast()) : url
                context["VPSGATE_TOKEN_FILE"] = tokenFile.map(ContextCommand.absolute)
                context["VPSGATE_TOKEN_ENV"] = tokenEnv
                context["VPSGATE_CA_FILE"] = ca.map(ContextCommand.absolute)
                config.contexts.append(context)
                if config.current == nil { config.current = name }
                try config.save(path)
                print("context \(name) added\(config.current == name ? " and in use" : " (vpsgatectl context use \(name))") in \(path)")
            }
        }
    }

    struct Use: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a context the current one.")
        @Argument var name: String
        func run() throws {
            try usage {
                let path = ContextCommand.configPath
                var config = try ContextConfig.load(path)
                guard config.context(name) != nil else { throw UsageError("no context named \(name) (vpsgatectl context list)") }
                config.current = name
                try config.save(path)
                print("context \(name) in use")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The contexts, the current one marked *; tokens are never shown.")
        @Option(name: [.short, .customLong("output")], help: "table, wide, json or jsonl.") var output: String = "table"
        func run() throws {
            try usage {
                let config = try ContextConfig.load(ContextCommand.configPath)
                print(try ContextCommand.listing(config, output: output))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a context (its token file is left as it is).")
        @Argument var name: String
        func run() throws {
            try usage {
                let path = ContextCommand.configPath
                var config = try ContextConfig.load(path)
                guard config.context(name) != nil else { throw UsageError("no context named \(name) (vpsgatectl context list)") }
                config.contexts.removeAll { $0.name == name }
                if config.current == name { config.current = nil }
                try config.save(path)
                print("context \(name) removed")
            }
        }
    }

    /// `context list`'s text: one row a context, with where its token is but never the token.
    static func listing(_ config: ContextConfig, output: String) throws(UsageError) -> String {
        let rows: [JSONValue] = config.contexts.map { context in
            .object([("current", .string(context.name == config.current ? "*" : "")), ("name", .string(context.name)),
                     ("url", context["VPSGATE_URL"].map(JSONValue.string) ?? .null), ("token", .string(context.tokenSource)),
                     ("ca", context["VPSGATE_CA_FILE"].map(JSONValue.string) ?? .null)])
        }
        guard let format = OutputFormat(output: output, columns: GlobalOptions.current.columns, header: GlobalOptions.current.header,
                                        terminal: false) else { throw UsageError("-o takes \(OutputFormat.names)") }
        return try format.render(.array(rows))
    }
}

/// Runs `body`; a `UsageError` is said on stderr and ends the process with 64.
private func usage(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as UsageError {
        Runner.error(error.description)
        throw ExitCode(Exit.usage)
    }
}
