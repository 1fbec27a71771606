import ArgumentParser
import Platform
import VpsgateCore

/// vpsgate's command line. Exit codes:
/// 0 done (the operation succeeded; with --no-wait: accepted), 1 refused or failed (a
/// problem from vpsgate, or an operation that failed or was cancelled), 64 usage,
/// 3 unavailable (vpsgate or Hostinger could not answer, after the retries), 4 still running
/// when --timeout passed, 5 awaiting approval (a person must approve it first), 6
/// authentication (401 or 403: the token is missing, wrong or not granted this).
public struct VpsgateCtl: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vpsgatectl",
        abstract: "Change Hostinger VPS through vpsgate: every command keyed, authorized, audited.",
        discussion: """
            Configuration: contexts (vpsgatectl context add|use|list|remove; --context NAME for one command) in the config file
            (VPSGATECTL_CONFIG, else $XDG_CONFIG_HOME/vpsgate/config, else ~/.config/vpsgate/config), or VPSGATE_URL,
            VPSGATE_TOKEN (or VPSGATE_TOKEN_FILE), VPSGATE_CA_FILE from the environment.
            Output: -o table|wide|json|jsonl, --columns a,b.c, --no-header. Completion: vpsgatectl completion bash|zsh|fish.
            Commands are named as in vpsgate's catalogue: `vpsgatectl vps restart 1001`, `vpsgatectl firewall rule create 4001
            --protocol TCP --port 443 --source any --source-detail any`. `vpsgatectl commands` lists them.
            Commands that cannot be undone (deletes, restores, password sets, …) ask first on a terminal; --yes skips the
            question, and without a terminal it is required.
            Exit codes: 0 done, 1 refused or failed, 3 unavailable, 4 still running at --timeout, 5 awaiting approval,
            6 authentication (401/403), 64 usage.
            """,
        version: BuildInfo.versionLine(program: "vpsgatectl"),
        subcommands: [VPS.self, Firewall.self, PublicKey.self, Script.self, Operations.self, Approvals.self, Batches.self, Events.self,
                      Catalogue.self, Freezes.self, Me.self, Commands.self, MCPCommand.self, ContextCommand.self, CompletionCommand.self])

    public init() {}

    /// The process's entry: parses the arguments, runs the command and exits with its code.
    /// It is async so that `main` resolves to `AsyncParsableCommand`'s, which runs `mcp`;
    /// top-level code would pick the synchronous one.
    /// The global options (`--context`, `--columns`, `--no-header`) are taken out first.
    public static func runProcess() async {
        do {
            let (options, arguments) = try GlobalOptions.extract(Array(CommandLine.arguments.dropFirst()))
            GlobalOptions.current = options
            await main(arguments)
        } catch {
            Runner.error("\(error)")
            Self.exit(withError: ExitCode(Exit.usage))
        }
    }
}

/// An operation id goes into a path: anything but a UUID could name another route
/// (`../vps/1001/restart`), so it is refused before anything is sent.
func checkOperationID(_ id: String) throws {
    guard UUIDv4.isValid(id) else { throw ValidationError("not an operation id (a UUID): \(id)") }
}

/// Runs `body` and ends the process with the exit code it returns (or the one it failed with).
func exiting(_ body: () throws -> Int32) throws {
    do {
        throw ExitCode(try body())
    } catch let error as ExitCodeError {
        throw ExitCode(error.code)
    }
}

enum Exit {
    static let done: Int32 = 0
    static let failed: Int32 = 1
    static let usage: Int32 = 64
    static let unavailable: Int32 = 3
    static let stillRunning: Int32 = 4
    static let awaitingApproval: Int32 = 5
    /// 401 or 403, from nginx or vpsgate: the token is missing, wrong, expired or not
    /// granted this. Apart from other refusals so a script can tell "fix the credentials"
    /// from "fix the request" (gh and doctl do the same; 4 is taken by "still running").
    static let authentication: Int32 = 6

    /// The exit code an HTTP problem status means.
    static func code(forStatus status: Int) -> Int32 {
        switch status {
        case 401, 403: authentication
        case 500...: unavailable
        default: failed
        }
    }
}

/// What a group's words ask for (`Group.resolve`).
enum GroupRequest {
    /// Help to print.
    case help(String)
    /// A catalogue command, with the words after its name (`Runner.command` parses them).
    case command(Command, [String])
    /// A read: its path, and the output format.
    case read(path: String, output: String)
}

/// What every command group does with the words after its name.
protocol Group: ParsableCommand {
    static var name: String { get }
    var words: [String] { get }
}

extension Group {
    /// The group's reads, from the catalogue of reads: words ⇒ path (nil: not a read of
    /// this group). `list` takes nothing; a read of one resource takes its id (`get 1001`),
    /// then its second path parameter (`docker-logs 1001 web`) and the query values it
    /// requires as flags (`--date-from …`), each checked and percent-encoded.
    static func read(_ words: [String]) -> String? {
        guard let verb = words.first,
              let route = ReadRoute.allCases.first(where: { $0.command?.group == name && $0.command?.verb == verb }) else { return nil }
        var rest = Array(words.dropFirst())
        // A read Hostinger answers in pages takes `--page N` (from 1) anywhere after its verb.
        var page: String?
        if route.query.contains(where: { $0.name == "page" }), let index = rest.firstIndex(of: "--page") {
            guard index + 1 < rest.count, let number = Int(rest[index + 1]), number >= 1 else { return nil }
            page = "page=\(number)"
            rest.removeSubrange(index...index + 1)
        }
        guard route.namesOne else { return rest.isEmpty ? route.path + (page.map { "?" + $0 } ?? "") : nil }
        guard let first = rest.first, let id = PathID.parse(Substring(first)) else { return nil }
        rest.removeFirst()
        var values = [String(id)]
        if let parameter = route.parameter {
            guard let value = rest.first, PathParameter.accepts(parameter, Substring(value)) else { return nil }
            values.append(value)
            rest.removeFirst()
        }
        var query: [String] = []
        for name in route.required {
            guard let index = rest.firstIndex(of: ReadRoute.flag(name)), index + 1 < rest.count else { return nil }
            query.append("\(name)=\(Runner.percentEncoded(rest[index + 1]))")
            rest.removeSubrange(index...index + 1)
        }
        guard rest.isEmpty else { return nil }
        if let page { query.append(page) }
        return route.filled(values) + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// The group's reads as its abstract names them: `list, get <id>`.
    static var reads: String {
        ReadRoute.allCases.compactMap { route in route.command.flatMap { $0.group == name ? $0.verb + route.commandArguments : nil } }
            .joined(separator: ", ")
    }

    func run() throws {
        switch try Self.resolve(words) {
        case .help(let text): print(text)
        case .command(let command, let rest): try exiting { try Runner().command(command, rest) }
        case .read(let path, let output): try exiting { try Runner().read(path, output: output) }
        }
    }

    /// What the words after the group's name ask for, decided before anything is sent: a
    /// catalogue command (the longest name that matches), help, or one of the group's reads.
    static func resolve(_ words: [String]) throws -> GroupRequest {
        if let (command, rest) = Invocation.command(in: [name] + words) {
            if rest.contains("--help") || rest.contains("-h") { return .help(Invocation.help(command)) }
            return .command(command, rest)
        }
        if words.isEmpty || words.contains("--help") || words.contains("-h") { return .help(groupHelp) }
        let (output, readWords) = Runner.outputOption(words, default: "auto")
        guard let path = read(readWords) else {
            throw ValidationError("unknown \(name) command: \(words.joined(separator: " ")) (see vpsgatectl \(name) --help)")
        }
        return .read(path: path, output: output)
    }

    static var groupHelp: String {
        let commands = Command.catalogue.filter { $0.name.hasPrefix(name + ".") }.map { "  " + Invocation.usage($0) }
        let reads = ReadRoute.allCases.compactMap { route in
            route.command.flatMap { $0.group == name ? "  \(name) \($0.verb)\(route.commandArguments)" : nil }
        }
        return (["USAGE: vpsgatectl \(name) <command> …", "", "COMMANDS (vpsgatectl \(name) <command> --help for each):"] + commands
                + (reads.isEmpty ? [] : ["", "READS:"] + reads))
            .joined(separator: "\n")
    }
}

struct VPS: Group {
    static let configuration = CommandConfiguration(commandName: "vps", abstract: "VPS: \(VPS.reads), and their commands.")
    static let name = "vps"
    @Argument(parsing: .captureForPassthrough) var words: [String] = []
}

struct Firewall: Group {
    static let configuration = CommandConfiguration(commandName: "firewall", abstract: "Firewalls: \(Firewall.reads), and their commands.")
    static let name = "firewall"
    @Argument(parsing: .captureForPassthrough) var words: [String] = []
}

struct PublicKey: Group {
    static let configuration = CommandConfiguration(commandName: "public_key", abstract: "SSH public keys: \(PublicKey.reads), and their commands.",
                                                    aliases: ["public-key"])
    static let name = "public_key"
    @Argument(parsing: .captureForPassthrough) var words: [String] = []
}

struct Script: Group {
    static let configuration = CommandConfiguration(commandName: "post_install_script", abstract: "Post-install scripts: \(Script.reads), and their commands.",
                                                    aliases: ["post-install-script"])
    static let name = "post_install_script"
    @Argument(parsing: .captureForPassthrough) var words: [String] = []
}

struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")],
            help: "table, wide, json or jsonl (default: table for a list on a terminal, else json; --columns a,b.c, --no-header).")
    var output: String = "auto"
}

struct Operations: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "operations", abstract: "Operations: list, get, wait.",
                                                    subcommands: [List.self, Get.self, Wait.self])
    struct List: ParsableCommand {
        @Option var vps: Int?
        @Option var state: String?
        @Option(help: "Operations a page (1 to 200, default 50).") var limit: Int?
        @Option(help: "The page after this cursor: the previous page's next_before (printed on stderr).") var cursor: String?
        @OptionGroup var options: OutputOptions
        func validate() throws {
            if let limit, !(1...200).contains(limit) { throw ValidationError("--limit must be 1 to 200") }
            if let cursor { try checkOperationID(cursor) }
        }
        func run() throws {
            var query = [vps.map { "vps=\($0)" }, state.map { "state=\(Runner.percentEncoded($0))" }, limit.map { "limit=\($0)" },
                         cursor.map { "before=\($0)" }].compactMap { $0 }.joined(separator: "&")
            if !query.isEmpty { query = "?" + query }
            try exiting { try Runner().read(ReadRoute.listOperations.path + query, output: options.output, cursor: "next_before") }
        }
    }
    struct Get: ParsableCommand {
        @Argument var id: String
        @OptionGroup var options: OutputOptions
        func validate() throws { try checkOperationID(id) }
        func run() throws { try exiting { try Runner().read(ReadRoute.getOperation.filled(id), output: options.output) } }
    }
    struct Wait: ParsableCommand {
        @Argument var id: String
        @Option(help: "Seconds to wait at most.") var timeout: Int = 600
        @OptionGroup var options: OutputOptions
        func validate() throws { try checkOperationID(id) }
        func run() throws { try exiting { try Runner().waitFor(operation: id, timeout: timeout, output: options.output) } }
    }
}

struct Approvals: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "approvals", abstract: "Operations awaiting your approval; approve, deny, cancel.",
                                                    subcommands: [List.self, Decide.self], defaultSubcommand: List.self)
    struct List: ParsableCommand {
        @OptionGroup var options: OutputOptions
        func run() throws { try exiting { try Runner().read(ReadRoute.approvals.path, output: options.output) } }
    }
    struct Decide: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "decide", abstract: "approve|deny|cancel <operation id> [--reason …]")
        @Argument var action: String
        @Argument var id: String
        @Option var reason: String?
        @OptionGroup var options: OutputOptions
        func validate() throws {
            guard ApprovalAction(rawValue: action) != nil else { throw ValidationError("approve, deny or cancel") }
            try checkOperationID(id)
        }
        func run() throws {
            let body: JSONValue? = reason.map { .object([("reason", .string($0))]) }
            guard let decision = ApprovalAction(rawValue: action) else { throw ValidationError("approve, deny or cancel") }
            try exiting { try Runner().post(decision.path(id), body: body, output: options.output) }
        }
    }
}

struct Batches: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "batches", abstract: "Batches: create, list, get, approve, deny, cancel, resume.",
                                                    subcommands: [Create.self, List.self, Get.self, Decide.self])
    struct Create: ParsableCommand {
        @Argument(help: "A VPS command: vps.restart, vps.firewall.sync, …") var command: String
        @Option(help: "VPS ids separated by commas, or *.") var vps: String
        @Option var maxInFlight: Int?
        @Option var maxFailures: Int?
        @Option var pauseSeconds: Int?
        @Option(help: "The command's body, as JSON.") var body: String?
        @Option(help: "Path parameters as name=value, separated by commas (firewallId=4001).") var parameters: String?
        @Option(help: "An idempotency key (default: a new one, printed).") var key: String?
        @Flag(name: [.customShort("y"), .long], help: "Send a command that cannot be undone without asking.") var yes = false
        @OptionGroup var options: OutputOptions
        func run() throws {
            if let found = Command.named(command), let stop = Runner.confirm(found, "\(command) on VPS \(vps)", yes: yes) {
                throw ExitCode(stop)
            }
            var members: [(key: String, value: JSONValue)] = [("command", .string(command))]
            members.append(("vps", vps == "*" ? .string("*") : .array(vps.split(separator: ",").map { .number(String($0)) })))
            if let body { members.append(("body", try JSONValue.parse(Array(body.utf8)))) }
            if let parameters {
                members.append(("parameters", .object(parameters.split(separator: ",").compactMap { pair in
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    return parts.count == 2 ? (String(parts[0]), .string(String(parts[1]))) : nil
                })))
            }
            if let maxInFlight { members.append(("max_in_flight", .number(String(maxInFlight)))) }
            if let maxFailures { members.append(("max_failures", .number(String(maxFailures)))) }
            if let pauseSeconds { members.append(("pause_seconds", .number(String(pauseSeconds)))) }
            try exiting { try Runner().post(ReadRoute.batches.path, body: .object(members), key: key ?? Runner.newKey(), output: options.output) }
        }
    }
    struct List: ParsableCommand {
        @Option(help: "Batches a page (1 to 200, default 50).") var limit: Int?
        @Option(help: "The page after this cursor: the previous page's next_before (printed on stderr).") var cursor: Int?
        @OptionGroup var options: OutputOptions
        func validate() throws {
            if let limit, !(1...200).contains(limit) { throw ValidationError("--limit must be 1 to 200") }
            if let cursor, cursor < 1 { throw ValidationError("--cursor must be a batch id") }
        }
        func run() throws {
            var query = [limit.map { "limit=\($0)" }, cursor.map { "before=\($0)" }].compactMap { $0 }.joined(separator: "&")
            if !query.isEmpty { query = "?" + query }
            try exiting { try Runner().read(ReadRoute.batches.path + query, output: options.output, cursor: "next_before") }
        }
    }
    struct Get: ParsableCommand {
        @Argument var id: Int
        @OptionGroup var options: OutputOptions
        func run() throws { try exiting { try Runner().read(ReadRoute.batch.filled(String(id)), output: options.output) } }
    }
    struct Decide: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "decide", abstract: "approve|deny|cancel|resume <batch id> [--reason …]")
        @Argument var action: String
        @Argument var id: Int
        @Option var reason: String?
        @OptionGroup var options: OutputOptions
        func validate() throws { guard BatchAction(rawValue: action) != nil else { throw ValidationError("approve, deny, cancel or resume") } }
        func run() throws {
            guard let decision = BatchAction(rawValue: action) else { throw ValidationError("approve, deny, cancel or resume") }
            try exiting { try Runner().post(decision.path(id), body: reason.map { .object([("reason", .string($0))]) }, output: options.output) }
        }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "The event feed.", subcommands: [Tail.self])
    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print events as they come (one JSON per line), from --after or now.")
        @Option var after: String?
        @Option(help: "Stop after this many events (default: never).") var count: Int?
        func run() throws { try exiting { try Runner().tail(after: after, count: count) } }
    }
}

struct Catalogue: ParsableCommand {
    /// The account's catalogue's reads: `templates`, `data-centers`.
    static let routes = ReadRoute.allCases.filter { $0.command?.group == "catalogue" }
    static let configuration = CommandConfiguration(commandName: "catalogue",
                                                    abstract: routes.compactMap { $0.command?.verb }.joined(separator: " | "))
    @Argument var what: String
    @OptionGroup var options: OutputOptions
    func run() throws {
        guard let route = Self.routes.first(where: { $0.command?.verb == what }) else {
            throw ValidationError(Self.routes.compactMap { $0.command?.verb }.joined(separator: " or "))
        }
        try exiting { try Runner().read(route.path, output: options.output) }
    }
}

struct Me: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Who the token is, and its grants.")
    @OptionGroup var options: OutputOptions
    func run() throws {
        try exiting {
            let runner = try Runner()
            // Which vpsgate this is, on stderr so that stdout stays vpsgate's answer.
            standardError("context: \(runner.api.settings.context ?? "none (the environment's VPSGATE_*)") at \(runner.api.settings.url)\n")
            return try runner.read(ReadRoute.me.path, output: options.output)
        }
    }
}

struct Freezes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The change freezes in force now and those still to come (a command they cover answers 423 change-frozen).")
    @OptionGroup var options: OutputOptions
    func run() throws {
        try exiting { try Runner().read(ReadRoute.freezes.path, output: options.output) }
    }
}

struct Commands: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Every command of vpsgate's catalogue, as vpsgatectl names it.")
    func run() throws {
        for command in Command.catalogue { print("\(command.name)\t\(Invocation.usage(command))") }
    }
}
