import Platform
import VpsgateCore
import VpsgateTools

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs one invocation against vpsgate: the request (keyed), the wait, the output and the
/// exit code.
struct Runner {
    let api: API

    init() throws {
        do {
            api = API(settings: try ClientSettings.load())
        } catch {
            Self.error("\(error)")
            throw ExitCodeError(Exit.usage)
        }
        api.onRetry = { attempt, why, seconds in Runner.error("retrying in \(seconds) s (\(why), attempt \(attempt))") }
    }

    static func newKey() -> String { "ctl-" + UUIDv4.generate() }

    static func error(_ text: String) { standardError("vpsgatectl: \(text)\n") }

    /// `-o json|table` / `--output=…` taken out of `words`.
    static func outputOption(_ words: [String], default: String = "json") -> (String, [String]) {
        var output = `default`
        var rest: [String] = []
        var index = 0
        while index < words.count {
            let (flag, inline) = words[index].splitFlag
            if flag == "-o" || flag == "--output" {
                output = inline ?? words[safe: index + 1] ?? output
                index += inline == nil ? 2 : 1
            } else {
                rest.append(words[index])
                index += 1
            }
        }
        return (output, rest)
    }

    // MARK: - Commands

    func command(_ command: Command, _ words: [String]) throws -> Int32 {
        let call: CatalogueCall
        do {
            var standardInput = ""
            call = try CatalogueCall.parse(command, words) { Self.readStandardInput(into: &standardInput) }
        } catch {
            Self.error("\(error)")
            return Exit.usage
        }
        let (invocation, output, wait, plan, key, timeout, emergency, yes, reason) =
            (call.invocation, call.output, call.wait, call.plan, call.key, call.timeout, call.emergency, call.yes, call.reason)
        var query = ""
        if let emergency { query = "?emergency=true&reason=" + Self.percentEncoded(emergency) }
        if plan {
            let answer = try sent(api.send(command.method, invocation.path + (query.isEmpty ? "?" : query + "&") + "validate_only=true",
                                           body: invocation.body))
            return show(answer, output: output)
        }
        if let stop = Self.confirm(command, "\(command.name) \(invocation.target)", yes: yes) { return stop }
        let chosen = key ?? Self.newKey()
        // Printed before sending: killed at any point, the same key runs it once.
        Self.error("idempotency key \(chosen) (to retry this command: --key \(chosen))")
        let answer = try sent(api.send(command.method, invocation.path + query, body: invocation.body, key: chosen, reason: reason))
        if let note = answer.replayNote { Self.error("\(note) (a new --key runs it again)") }
        guard !answer.isProblem, let operation = answer.body, let id = operation["id"]?.stringValue else { return show(answer, output: output) }
        let state = operation["state"]?.stringValue ?? ""
        if state == "awaiting_approval" {
            Self.error("operation \(id) awaits approval (\(operation["approval"]?["required"]?.intValue ?? 1) needed): nothing is sent until it is approved")
            try emit(operation, output: output)
            return wait ? Exit.awaitingApproval : Exit.done
        }
        guard wait, !Self.isTerminal(state) else {
            try emit(operation, output: output)
            return Self.isTerminal(state) ? Self.exit(forState: state) : Exit.done
        }
        return try waitFor(operation: id, timeout: timeout, output: output, label: "\(command.name) \(invocation.target)")
    }

    /// An irreversible command (`Command.irreversible`) goes only with a person's yes: asked on
    /// the terminal, or given as `--yes`. Without a terminal nothing asks, so `--yes` is
    /// required. Nil to go on; else the exit code, and nothing was sent.
    static func confirm(_ command: Command, _ what: String, yes: Bool) -> Int32? {
        guard command.irreversible, !yes else { return nil }
        // The question goes to stderr and the answer comes from stdin: both must be a
        // person's terminal, or no one would see what they are agreeing to.
        guard isatty(0) == 1, isatty(2) == 1 else {
            error("\(what) cannot be undone: pass --yes to send it without a terminal; nothing was sent")
            return Exit.usage
        }
        standardError("\(what): \(command.summary) This cannot be undone. Send it? [y/N] ")
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while answer.count < 64 {
            let count = readDescriptor(0, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 || byte == UInt8(ascii: "\n") { break }
            answer.append(byte)
        }
        guard ["y", "yes"].contains(String(decoding: answer, as: UTF8.self).trimmingSpaces.lowercased()) else {
            error("not confirmed: nothing was sent")
            return Exit.failed
        }
        return nil
    }

    /// Standard input, for a field given as `-`, without its last newline; read into
    /// `standardInput`, which a second `-` finds again.
    static func readStandardInput(into standardInput: inout String) -> String {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = readDescriptor(0, &buffer, buffer.count)
            if count <= 0 { break }
            standardInput += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        return standardInput.hasSuffix("\n") ? String(standardInput.dropLast()) : standardInput
    }

    /// Follows the operation with `?wait=` reads until it is terminal or `timeout` passes: a
    /// live line on a terminal, one line per change otherwise.
    func waitFor(operation id: String, timeout: Int, output: String, label: String? = nil) throws -> Int32 {
        let started = MonotonicClock.milliseconds()
        let live = isatty(2) == 1
        var last = ""
        var operation: JSONValue?
        while true {
            let elapsed = (MonotonicClock.milliseconds() - started) / 1000
            let wait = max(0, min(20, timeout - elapsed))
            let answer = try sent(api.send("GET", ReadRoute.getOperation.filled(id) + "?wait=\(wait)"))
            guard !answer.isProblem, let body = answer.body else { return show(answer, output: output) }
            operation = body
            let state = body["state"]?.stringValue ?? "?"
            let line = "\(label ?? id): \(state)\(body["hostinger_action"]?["state"]?.stringValue.map { " (Hostinger: \($0))" } ?? "")"
            if live {
                standardError("\r\u{1B}[2K\(line) \(elapsed) s")
            } else if line != last {
                standardError("\(line)\n")
            }
            last = line
            if Self.isTerminal(state) || (MonotonicClock.milliseconds() - started) / 1000 >= timeout { break }
        }
        if live { standardError("\n") }
        guard let operation else { return Exit.unavailable }
        try emit(operation, output: output)
        let state = operation["state"]?.stringValue ?? ""
        if !Self.isTerminal(state) {
            Self.error("operation \(id) is still \(state) after \(timeout) s: `vpsgatectl operations wait \(id)` follows it")
            return Exit.stillRunning
        }
        if state != "succeeded" { Self.error("operation \(id) \(state): \(operation["error"].map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "")") }
        return Self.exit(forState: state)
    }

    static func isTerminal(_ state: String) -> Bool { ["succeeded", "failed", "cancelled"].contains(state) }
    static func exit(forState state: String) -> Int32 { state == "succeeded" ? Exit.done : Exit.failed }

    // MARK: - Reads and other requests

    func read(_ path: String, output: String) throws -> Int32 { show(try sent(api.send("GET", path)), output: output) }

    /// A read of one page: the answer, then, when there is a next page, its `--cursor` on
    /// stderr (a table does not show the answer's `cursor` member).
    func read(_ path: String, output: String, cursor member: String) throws -> Int32 {
        let answer = try sent(api.send("GET", path))
        let code = show(answer, output: output)
        if !answer.isProblem, let next = answer.body?[member].flatMap({ $0.stringValue ?? $0.intValue.map(String.init) }) {
            Self.error("more: --cursor \(next)")
        }
        return code
    }

    func post(_ path: String, body: JSONValue?, key: String? = nil, output: String) throws -> Int32 {
        if let key { Self.error("idempotency key \(key) (to retry: --key \(key))") }
        let answer = try sent(api.send("POST", path, body: body, key: key))
        if let note = answer.replayNote { Self.error("\(note) (a new --key runs it again)") }
        return show(answer, output: output)
    }

    func tail(after: String?, count: Int?) throws -> Int32 {
        var cursor = after
        var printed = 0
        while count.map({ printed < $0 }) ?? true {
            let answer = try sent(api.send("GET", ReadRoute.events.path + "?wait=20&limit=100" + (cursor.map { "&after=\(Self.percentEncoded($0))" } ?? "")))
            guard !answer.isProblem, let body = answer.body else { return show(answer, output: "json") }
            for event in body["data"]?.arrayValue ?? [] where count.map({ printed < $0 }) ?? true {
                standardOutput(String(decoding: event.serialized(), as: UTF8.self) + "\n")
                printed += 1
            }
            cursor = body["next"]?.stringValue ?? cursor
        }
        return Exit.done
    }

    private func sent(_ result: Result<Answer, HTTPClientErrorBox.Wrapped>) throws -> Answer {
        switch result {
        case .success(let answer): return answer
        case .failure(let error):
            Self.error("vpsgate could not be reached: \(error)")
            throw ExitCodeError(Exit.unavailable)
        }
    }

    /// Prints an answer: its body on stdout, a problem on stderr too; the exit code it means.
    private func show(_ answer: Answer, output: String) -> Int32 {
        if let body = answer.body {
            // A problem is a document, not a row: printed as JSON whatever table was asked for.
            do { try emit(body, output: answer.isProblem && !["json", "jsonl"].contains(output) ? "json" : output) } catch { return Exit.usage }
        }
        guard answer.isProblem else { return Exit.done }
        let title = answer.body?["title"]?.stringValue ?? "HTTP \(answer.status)"
        let detail = answer.body?["detail"]?.stringValue ?? ""
        var message = "\(answer.status) \(title): \(detail)"
        for (field, messages) in answer.body?["errors"]?.objectValue ?? [] {
            message += "\n  \(field): \(messages.arrayValue?.compactMap(\.stringValue).joined(separator: "; ") ?? "")"
        }
        if answer.status == 401 || answer.status == 403 {
            message += "\n  (authentication or authorization failed: check the token of the context in use, `vpsgatectl context list`)"
        }
        Self.error(message)
        return Exit.code(forStatus: answer.status)
    }

    /// Prints `value` as `-o` and the global `--columns`/`--no-header` ask (`OutputFormat`);
    /// an unknown format or column is a usage error (exit 64), after the request.
    func emit(_ value: JSONValue, output: String) throws {
        guard let format = OutputFormat(output: output, columns: GlobalOptions.current.columns, header: GlobalOptions.current.header,
                                        terminal: isatty(1) == 1) else {
            Self.error("-o takes \(OutputFormat.names), not \(output)")
            throw ExitCodeError(Exit.usage)
        }
        do {
            print(try format.render(value))
        } catch {
            Self.error("\(error)")
            throw ExitCodeError(Exit.usage)
        }
    }

    /// A query or path value percent-encoded as the MCP tools encode theirs.
    static func percentEncoded(_ text: String) -> String { ToolCatalogue.percentEncoded(text) }
}

/// Writes straight to a descriptor: unbuffered, and no shared C stream.
func standardError(_ text: String) { write(2, text) }
func standardOutput(_ text: String) { write(1, text) }
private func write(_ descriptor: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { writeDescriptor(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if written <= 0 { return }
        offset += written
    }
}

/// `read(2)` and `write(2)`, named apart from `Runner.read` and the file's `write`, which
/// shadow the C functions inside them.
func readDescriptor(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.read(descriptor, buffer, count)
    #elseif canImport(Darwin)
    Darwin.read(descriptor, buffer, count)
    #endif
}

func writeDescriptor(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(descriptor, buffer, count)
    #elseif canImport(Darwin)
    Darwin.write(descriptor, buffer, count)
    #endif
}

/// A catalogue command as the command line gives it: the invocation (id, path parameters,
/// body) and vpsgatectl's own options. Parsed whole before anything is sent.
struct CatalogueCall {
    var invocation: Invocation
    /// `-o json|table`.
    var output = "json"
    /// `--wait` (the default) or `--no-wait`.
    var wait = true
    /// `--plan`: ask vpsgate what it would do (`validate_only`), send nothing.
    var plan = false
    /// `--key`: the idempotency key (default: a new one).
    var key: String?
    /// `--timeout`: seconds to wait for the operation at most.
    var timeout = 600
    /// `--emergency <reason>`.
    var emergency: String?
    /// `--yes` / `-y`: send an irreversible command without asking.
    var yes = false
    /// `--reason TEXT`: why, sent as the `Vpsgate-Reason` header (kept with the operation, shown to approvers).
    var reason: String?

    /// The catalogue command `words` name (`vps restart 1001 …`), parsed; refused when no
    /// command of the catalogue has that name.
    static func parse(_ words: [String], readStandardInput: () -> String = { "" }) throws -> CatalogueCall {
        guard let (command, rest) = Invocation.command(in: words) else {
            throw UsageError("unknown command: \(words.joined(separator: " ")) (see vpsgatectl commands)")
        }
        return try parse(command, rest, readStandardInput: readStandardInput)
    }

    /// The words after `command`'s name, parsed; a `UsageError` says what is wrong.
    static func parse(_ command: Command, _ words: [String], readStandardInput: () -> String) throws -> CatalogueCall {
        let (output, afterOutput) = Runner.outputOption(words)
        let (invocation, options) = try Invocation.parse(command, afterOutput, readStandardInput: readStandardInput)
        var call = CatalogueCall(invocation: invocation, output: output)
        var index = 0
        while index < options.count {
            let (flag, inline) = options[index].splitFlag
            let value = inline ?? options[safe: index + 1]
            switch flag {
            case "--wait": call.wait = true
            case "--no-wait": call.wait = false
            case "--plan": call.plan = true
            case "--yes", "-y": call.yes = true
            case "--key", "--timeout", "--emergency", "--reason":
                guard let value else { throw UsageError("\(flag) needs a value") }
                if flag == "--key" { call.key = value }
                if flag == "--reason" {
                    if case .failure(let invalid) = CommandReason.parse(value) { throw UsageError("--reason: \(CommandReason.message(invalid))") }
                    call.reason = value
                }
                if flag == "--emergency" { call.emergency = value }
                if flag == "--timeout" {
                    guard let seconds = Int(value), seconds >= 0 else { throw UsageError("--timeout takes seconds") }
                    call.timeout = seconds
                }
                if inline == nil { index += 1 }
            default:
                throw UsageError("unknown option \(options[index]) for \(command.name): \(Invocation.usage(command))")
            }
            index += 1
        }
        return call
    }
}

/// A failure that ends the process with an exit code of its own.
struct ExitCodeError: Error {
    var code: Int32
    init(_ code: Int32) { self.code = code }
}

import HTTPClient
enum HTTPClientErrorBox { typealias Wrapped = HTTPClientError }

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
