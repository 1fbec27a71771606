/// vpsgate's own OpenAPI 3.1 document, generated from the command catalogue and the reads,
/// so that it lists exactly the routes vpsgate serves. `docs/openapi.json` is this output.
public enum OpenAPIDocument {
    /// A read route: method, path template, permission (nil: none), summary, 200 schema.
    public struct Read: Sendable {
        public var method: String
        public var path: String
        public var summary: String
        public var schema: String
        public var query: [(name: String, type: String, summary: String)]
        /// The query parameters it requires.
        public var required: [String] = []
    }

    public static let reads: [Read] = ReadRoute.allCases.map { route in
        Read(method: "GET", path: route.path, summary: route.summary, schema: route.schema, query: route.query, required: route.required)
    }

    /// Every (method, path template) the document describes.
    public static var routes: [(method: String, path: String)] {
        Command.catalogue.map { ($0.method, $0.pathTemplate) } + reads.map { ($0.method, $0.path) }
            + ApprovalAction.allCases.map { ("POST", $0.pathTemplate) }
            + [("POST", ReadRoute.batches.path)] + BatchAction.allCases.map { ("POST", $0.pathTemplate) }
    }

    public static func generate() -> JSONValue {
        var paths: [(key: String, value: JSONValue)] = []
        func add(_ path: String, _ method: String, _ operation: JSONValue) {
            if let index = paths.firstIndex(where: { $0.key == path }), case .object(var methods) = paths[index].value {
                methods.append((method.lowercased(), operation))
                paths[index].value = .object(methods)
            } else {
                paths.append((path, .object([(method.lowercased(), operation)])))
            }
        }
        for command in Command.catalogue { add(command.pathTemplate, command.method, operation(for: command)) }
        for read in reads { add(read.path, read.method, operation(for: read)) }
        for action in ApprovalAction.allCases {
            add(action.pathTemplate, "POST", operation(for: action))
        }
        add(ReadRoute.batches.path, "POST", createBatchOperation())
        for action in BatchAction.allCases { add(action.pathTemplate, "POST", operation(for: action)) }
        return .object([
            ("openapi", .string("3.1.0")),
            ("info", .object([
                ("title", .string("vpsgate")), ("version", .string("1.0.0")),
                ("description", .string("The control plane for Hostinger VPS mutations: explicit, authorized, idempotent commands with an audit trail. A problem's type is <VPSGATE_PROBLEM_BASE_URL>/problems#<code>, the code's section of docs/problems.md (answers stored before may be replayed with the older urn:vpsgate:problem:<code>).")),
            ])),
            ("security", .array([.object([("bearer", .array([]))])])),
            ("paths", .object(paths)),
            ("components", components()),
        ])
    }

    // MARK: - Operations

    private static func operation(for command: Command) -> JSONValue {
        var parameters: [JSONValue] = []
        if command.scope != .account { parameters.append(pathParameter("id", "The \(command.scope.noun) id.")) }
        for segment in command.pathSuffix where segment.hasPrefix("{") {
            let name = String(segment.dropFirst().dropLast())
            if PathParameter.names.contains(name) {
                parameters.append(.object([
                    ("name", .string(name)), ("in", .string("path")), ("required", .bool(true)),
                    ("description", .string("A Docker Compose project name.")),
                    ("schema", PathParameter.jsonSchema(name)),
                ]))
            } else {
                parameters.append(pathParameter(name, "A Hostinger id."))
            }
        }
        parameters.append(.object([
            ("name", .string("Idempotency-Key")), ("in", .string("header")), ("required", .bool(false)),
            ("description", .string("Required unless validate_only=true: 8 to 255 visible ASCII characters, bare or as a structured-field string.")),
            ("schema", .object([("type", .string("string")), ("minLength", .number("8")), ("maxLength", .number("257"))])),
        ]))
        parameters.append(reasonHeader)
        parameters.append(.object([
            ("name", .string("validate_only")), ("in", .string("query")), ("required", .bool(false)),
            ("description", .string("true: check everything, call nothing, answer 200 with the plan: the decision the command would meet now, what would be sent, the policy, the VPS and the call's side effects.")),
            ("schema", .object([("type", .string("string")), ("enum", .array([.string("true"), .string("false")]))])),
        ]))
        parameters.append(.object([
            ("name", .string("emergency")), ("in", .string("query")), ("required", .bool(false)),
            ("description", .string("true: override a freeze window, always through an approval (with reason).")),
            ("schema", .object([("type", .string("string")), ("enum", .array([.string("true"), .string("false")]))])),
        ]))
        parameters.append(.object([
            ("name", .string("reason")), ("in", .string("query")), ("required", .bool(false)),
            ("description", .string("Why an emergency override is needed (1 to 200 characters, percent-encoded).")),
            ("schema", .object([("type", .string("string")), ("minLength", .number("1")), ("maxLength", .number("200"))])),
        ]))
        var members: [(key: String, value: JSONValue)] = [
            ("operationId", .string(command.name.replacingDots())),
            ("summary", .string(command.summary)),
            ("description", .string("Permission: \(command.permission.rawValue) on \(command.scope == .account ? "the account" : "the \(command.scope.noun)")."
                + (command.destructive ? " Destructive: the body must repeat the VPS id as confirm." : "")
                + (command.minimumApprovals > 0 ? " Always needs \(command.minimumApprovals) approval(s) at least, whatever the policy." : "")
                + (command.answersResource ? " Hostinger answers at once: the operation is terminal in the 202, with the answer in result." : ""))),
            ("parameters", .array(parameters)),
        ]
        if !command.fields.isEmpty {
            members.append(("requestBody", .object([
                ("required", .bool(command.fields.contains(where: \.required))),
                ("content", .object([("application/json", .object([("schema", bodySchema(command.fields))]))])),
            ])))
        }
        members.append(("responses", .object([
            ("200", response("What would be sent (validate_only=true).", "ValidateOnly")),
            ("202", .object([
                ("description", .string("Accepted: the operation, also at Location (awaiting_approval when the command needs approval).")),
                ("headers", .object([("Location", .object([("schema", .object([("type", .string("string"))]))]))])),
                ("content", .object([("application/json", .object([("schema", reference("Operation"))]))])),
            ])),
        ] + ["400", "401", "403", "404", "409", "413", "422", "423", "429", "500", "502", "503"].map { ($0, reference("Problem", in: "responses")) })))
        return .object(members)
    }

    /// The `Vpsgate-Reason` header (`CommandReason`) every command and batch creation accepts.
    private static let reasonHeader: JSONValue = {
        let limit: String = String(CommandReason.maximumLength)
        let description: String = "Why the command is asked for: 1 to " + limit + " characters after trimming, no control characters "
            + "(422 validation-failed otherwise). Kept with the operation (field reason), its audit rows and events, and shown to approvers. "
            + "Required when the command's approval policy says so (422 reason-required). Not part of the idempotency fingerprint: "
            + "a retry under the same key with another reason replays the first answer."
        let schema: JSONValue = .object([("type", .string("string")), ("minLength", .number("1")), ("maxLength", .number(limit))])
        return .object([("name", .string(CommandReason.header)), ("in", .string("header")), ("required", .bool(false)),
                        ("description", .string(description)), ("schema", schema)])
    }()

    private static func createBatchOperation() -> JSONValue {
        let integer = { (minimum: Int, maximum: Int, summary: String) -> JSONValue in
            .object([("type", .string("integer")), ("minimum", .number(String(minimum))), ("maximum", .number(String(maximum))),
                     ("description", .string(summary))])
        }
        return .object([
            ("operationId", .string("createBatch")),
            ("summary", .string("Run one VPS command over many VPS (docs/fleets.md#batches): every VPS authorized first (403 naming those refused), children run as ordinary operations by the instances' background work.")),
            ("parameters", .array([.object([
                ("name", .string("Idempotency-Key")), ("in", .string("header")), ("required", .bool(true)),
                ("schema", .object([("type", .string("string")), ("minLength", .number("8")), ("maxLength", .number("257"))])),
            ]), reasonHeader])),
            ("requestBody", .object([("required", .bool(true)), ("content", .object([("application/json", .object([("schema", .object([
                ("type", .string("object")), ("additionalProperties", .bool(false)), ("required", .array([.string("command"), .string("vps")])),
                ("properties", .object([
                    ("command", .object([("type", .string("string")),
                                         ("enum", .array(Command.catalogue.filter { $0.scope == .vps && !$0.destructive }.map { .string($0.name) }))])),
                    ("body", .object([("type", .string("object")), ("description", .string("The command's body, the same for every VPS."))])),
                    ("parameters", .object([("type", .string("object")), ("description", .string("The command's path parameters (firewallId, …)."))])),
                    ("vps", .object([("oneOf", .array([
                        .object([("type", .string("array")), ("minItems", .number("1")), ("maxItems", .number(String(BatchRequest.maximumTargets))),
                                 ("uniqueItems", .bool(true)), ("items", .object([("type", .string("integer")), ("minimum", .number("1"))]))]),
                        .object([("const", .string("*"))]),
                    ]))])),
                    ("max_in_flight", integer(1, 50, "Children running at once (default 1).")),
                    ("max_failures", integer(0, BatchRequest.maximumTargets, "Failures tolerated before the batch halts (default 0).")),
                    ("pause_seconds", integer(0, 3600, "Pause between two starts (default 0).")),
                ])),
            ]))]))]))])),
            ("responses", .object([("202", response("The batch (also at Location).", "Batch"))]
                + ["400", "401", "403", "409", "413", "422", "500", "502", "503"].map { ($0, reference("Problem", in: "responses")) })),
        ])
    }

    private static func operation(for action: BatchAction) -> JSONValue {
        let summary =
            switch action {
            case .approve: "Approve a batch awaiting approval (vps:approve on every VPS; not its requester): once for all its children."
            case .deny: "Deny a batch awaiting approval (vps:approve on every VPS; reason required): nothing is started."
            case .cancel: "Cancel a batch (its requester, or vps:approve on every VPS): children not started are cancelled."
            case .resume: "Resume a halted or cancelled batch (its requester, or vps:approve on every VPS): skipped and cancelled children run; failures count from here."
            }
        return .object([
            ("operationId", .string(action.rawValue + "Batch")),
            ("summary", .string(summary)),
            ("parameters", .array([pathParameter("id", "The batch id.")])),
            ("requestBody", .object([
                ("required", .bool(action == .deny)),
                ("content", .object([("application/json", .object([("schema", .object([
                    ("type", .string("object")), ("additionalProperties", .bool(false)),
                    ("properties", .object([("reason", .object([("type", .string("string")), ("minLength", .number("1")),
                                                                ("maxLength", .number("500"))]))])),
                ]))]))])),
            ])),
            ("responses", .object([("200", response("The batch after the decision.", "Batch"))]
                + ["400", "401", "403", "404", "409", "413", "422", "500", "503"].map { ($0, reference("Problem", in: "responses")) })),
        ])
    }

    private static func operation(for action: ApprovalAction) -> JSONValue {
        let summary =
            switch action {
            case .approve: "Approve an operation awaiting approval (vps:approve; not its requester). Approving twice counts once."
            case .deny: "Deny an operation awaiting approval (vps:approve; reason required): it ends cancelled, nothing sent."
            case .cancel: "Cancel an operation awaiting approval or approved (its requester, or vps:approve): it ends cancelled."
            }
        return .object([
            ("operationId", .string(action.rawValue + "Operation")),
            ("summary", .string(summary)),
            ("parameters", .array([.object([
                ("name", .string("operationId")), ("in", .string("path")), ("required", .bool(true)),
                ("schema", .object([("type", .string("string")), ("format", .string("uuid"))])),
            ])])),
            ("requestBody", .object([
                ("required", .bool(action == .deny)),
                ("content", .object([("application/json", .object([("schema", .object([
                    ("type", .string("object")), ("additionalProperties", .bool(false)),
                    ("required", .array(action == .deny ? [.string("reason")] : [])),
                    ("properties", .object([("reason", .object([("type", .string("string")), ("minLength", .number("1")),
                                                                ("maxLength", .number("500"))]))])),
                ]))]))])),
            ])),
            ("responses", .object([("200", response("The operation after the decision.", "Operation"))]
                + ["400", "401", "403", "404", "409", "413", "422", "500", "503"].map { ($0, reference("Problem", in: "responses")) })),
        ])
    }

    private static func operation(for read: Read) -> JSONValue {
        var parameters: [JSONValue] = []
        if read.path.contains("{id}") {
            let noun = read.path.hasPrefix("/v1/templates/") ? "template" : read.path.hasPrefix("/v1/firewalls/") ? "firewall"
                : read.path.hasPrefix("/v1/post-install-scripts/") ? "post-install script" : "VPS"
            parameters.append(pathParameter("id", "The \(noun) id."))
        }
        if read.path.contains("{operationId}") {
            parameters.append(.object([
                ("name", .string("operationId")), ("in", .string("path")), ("required", .bool(true)),
                ("schema", .object([("type", .string("string")), ("format", .string("uuid"))])),
            ]))
        }
        if read.path.contains("{projectName}") {
            parameters.append(.object([
                ("name", .string("projectName")), ("in", .string("path")), ("required", .bool(true)),
                ("description", .string("A Docker Compose project name.")), ("schema", PathParameter.jsonSchema("projectName")),
            ]))
        }
        if read.path.contains("{actionId}") { parameters.append(pathParameter("actionId", "A Hostinger action id.")) }
        for item in read.query {
            let schema: JSONValue = item.type == "date-time"
                ? .object([("type", .string("string")), ("format", .string("date-time"))]) : .object([("type", .string("string"))])
            parameters.append(.object([
                ("name", .string(item.name)), ("in", .string("query")), ("required", .bool(read.required.contains(item.name))),
                ("description", .string(item.summary)), ("schema", schema),
            ]))
        }
        let open = ["/healthz", "/readyz", "/openapi.json", "/metrics"].contains(read.path)
        var members: [(key: String, value: JSONValue)] = [
            ("operationId", .string(read.path == "/openapi.json" ? "openapi" : "get" + read.path.operationName())),
            ("summary", .string(read.summary)),
            ("parameters", .array(parameters)),
            ("responses", .object([("200", read.schema == "Metrics"
                ? .object([("description", .string("OK")),
                           ("content", .object([("text/plain", .object([("schema", .object([("type", .string("string"))]))]))]))])
                : response("OK", read.schema))]
                + ["400", "401", "403", "404", "405", "410", "422", "500", "502", "503"].map { ($0, reference("Problem", in: "responses")) })),
        ]
        if open { members.append(("security", .array([]))) }
        return .object(members)
    }

    private static func pathParameter(_ name: String, _ summary: String) -> JSONValue {
        .object([
            ("name", .string(name)), ("in", .string("path")), ("required", .bool(true)), ("description", .string(summary)),
            ("schema", .object([("type", .string("integer")), ("minimum", .number("1"))])),
        ])
    }

    /// A command's request body: its fields' schemas (`BodyField.jsonSchema`).
    public static func bodySchema(_ fields: [BodyField]) -> JSONValue {
        .object([
            ("type", .string("object")),
            ("additionalProperties", .bool(false)),
            ("required", .array(fields.filter(\.required).map { .string($0.name) })),
            ("properties", .object(fields.map { ($0.name, $0.jsonSchema) })),
        ])
    }

    private static func response(_ description: String, _ schema: String) -> JSONValue {
        .object([
            ("description", .string(description)),
            ("content", .object([("application/json", .object([("schema", reference(schema))]))])),
        ])
    }

    private static func reference(_ name: String, in section: String = "schemas") -> JSONValue {
        .object([("$ref", .string("#/components/\(section)/\(name)"))])
    }

    // MARK: - Components

    private static func components() -> JSONValue {
        func object(_ properties: [(String, JSONValue)], required: [String] = []) -> JSONValue {
            .object([("type", .string("object")), ("required", .array(required.map { .string($0) })),
                     ("properties", .object(properties.map { ($0.0, $0.1) }))])
        }
        func type(_ name: String, nullable: Bool = false) -> JSONValue {
            nullable ? .object([("type", .array([.string(name), .string("null")]))]) : .object([("type", .string(name))])
        }
        let states = JSONValue.array(OperationState.allCases.map { .string($0.rawValue) })
        let dateTime = JSONValue.object([("type", .string("string")), ("format", .string("date-time"))])
        /// Hostinger's `{data, meta}` page of `item`.
        func hostingerPage(_ item: JSONValue) -> JSONValue {
            object([("data", .object([("type", .string("array")), ("items", item)])),
                    ("meta", object([("current_page", type("integer")), ("per_page", type("integer")), ("total", type("integer"))]))],
                   required: ["data", "meta"])
        }
        return .object([
            ("securitySchemes", .object([("bearer", .object([("type", .string("http")), ("scheme", .string("bearer"))]))])),
            ("responses", .object([("Problem", .object([
                ("description", .string("An RFC 9457 problem.")),
                ("content", .object([("application/problem+json", .object([("schema", reference("Problem"))]))])),
            ]))])),
            ("schemas", .object([
                ("Problem", object([
                    ("type", .object([("type", .string("string")), ("pattern", .string("^(https://[^?#]+/problems#|urn:vpsgate:problem:)[a-z-]+$"))])),
                    ("title", type("string")), ("status", type("integer")), ("detail", type("string")), ("instance", type("string")),
                    ("correlation_id", type("string")),
                    ("errors", .object([("type", .string("object")), ("additionalProperties", .object([("type", .string("array")), ("items", type("string"))]))])),
                    ("upstream", object([("message", type("string", nullable: true)), ("correlation_id", type("string", nullable: true))])),
                    ("operation_id", type("string")), ("operation", type("string")), ("frozen_until", type("string")),
                ], required: ["type", "title", "status", "correlation_id"])),
                ("Operation", object([
                    ("id", .object([("type", .string("string")), ("format", .string("uuid"))])),
                    ("vps_id", type("integer", nullable: true)),
                    ("resource", object([("type", .object([("type", .string("string")), ("enum", .array(ResourceKind.allCases.map { .string($0.rawValue) }))])),
                                         ("id", type("integer", nullable: true))], required: ["type", "id"])),
                    ("command", type("string")),
                    ("state", .object([("type", .string("string")), ("enum", states)])),
                    ("hostinger_action", .object([("oneOf", .array([.object([("type", .string("null"))]), object([
                        ("id", type("integer")), ("name", type("string", nullable: true)), ("state", type("string", nullable: true)),
                    ], required: ["id", "name", "state"])]))])),
                    ("error", .object([("type", .array([.string("object"), .string("null")]))])),
                    ("requested_by", type("string")), ("reason", type("string", nullable: true)),
                    ("correlation_id", type("string")), ("idempotency_key", type("string")),
                    ("created_at", .object([("type", .string("string")), ("format", .string("date-time"))])),
                    ("updated_at", .object([("type", .string("string")), ("format", .string("date-time"))])),
                    ("completed_at", .object([("type", .array([.string("string"), .string("null")])), ("format", .string("date-time"))])),
                    ("result", .object([("description", .string(
                        "What Hostinger answered a synchronous command with (vps.setup: the VM); absent for commands that answer an action."))])),
                    ("approval", object([("required", type("integer")), ("expires_at", type("string", nullable: true)),
                                         ("dispatched_at", type("string", nullable: true))], required: ["required"])),
                ], required: ["id", "vps_id", "resource", "command", "state", "hostinger_action", "error", "requested_by", "reason", "correlation_id",
                              "idempotency_key", "created_at", "updated_at", "completed_at"])),
                ("OperationPage", object([("data", .object([("type", .string("array")), ("items", reference("Operation"))])),
                                          ("next_before", type("string", nullable: true))], required: ["data", "next_before"])),
                ("ApprovalRequest", .object([("allOf", .array([reference("Operation"), object([
                    ("requester", type("string")),
                    ("approvals", object([("given", type("integer")), ("required", type("integer")), ("expires_at", type("string", nullable: true)),
                                          ("decisions", .object([("type", .string("array")), ("items", object([
                                              ("principal", type("string")), ("decision", type("string")), ("reason", type("string", nullable: true)),
                                              ("decided_at", type("string")),
                                          ], required: ["principal", "decision", "reason", "decided_at"]))]))],
                                         required: ["given", "required", "expires_at", "decisions"])),
                    ("plan", .object([("type", .array([.string("object"), .string("null")])), ("description", .string(
                        "The kept request as validate_only shows a plan: {command, decision, would_send {method, path, body (secrets redacted)} or null once the request is no longer kept, approvals_required, effects}."))])),
                ], required: ["requester", "approvals", "plan"])]))])),
                ("ApprovalPage", object([("data", .object([("type", .string("array")), ("items", reference("ApprovalRequest"))])),
                                         ("next_before", type("string", nullable: true))], required: ["data", "next_before"])),
                ("Timeline", object([
                    ("operation", reference("Operation")),
                    ("data", .object([("type", .string("array")), ("items", object([
                        ("at", .object([("type", .string("string")), ("format", .string("date-time"))])),
                        ("source", .object([("type", .string("string")), ("enum", .array(["audit", "event", "approval"].map { .string($0) }))])),
                        ("kind", type("string")), ("principal", type("string", nullable: true)), ("outcome", type("string", nullable: true)),
                        ("detail", .object([("type", .array([.string("object"), .string("null")]))])),
                    ], required: ["at", "source", "kind", "principal", "outcome", "detail"]))])),
                ], required: ["operation", "data"])),
                ("Event", object([
                    ("id", .object([("type", .string("string")), ("pattern", .string("^evt_[0-9]+$"))])),
                    ("type", .object([("type", .string("string")), ("enum", .array(EventType.all.map { .string($0) }))])),
                    ("occurred_at", .object([("type", .string("string")), ("format", .string("date-time"))])),
                    ("vps_id", type("integer", nullable: true)),
                    ("operation_id", type("string", nullable: true)),
                    ("data", .object([("type", .string("object")), ("description", .string(
                        "operation.*: {operation (as GET /v1/operations/{id} shows it), previous_state}; approval.*: {approval}; batch.*: {batch, previous_state}."))])),
                ], required: ["id", "type", "occurred_at", "vps_id", "operation_id", "data"])),
                ("EventPage", object([("data", .object([("type", .string("array")), ("items", reference("Event"))])),
                                      ("next", type("string", nullable: true))], required: ["data", "next"])),
                ("ValidateOnly", object([
                    ("validate_only", .object([("const", .bool(true))])), ("command", type("string")), ("vps_id", type("integer", nullable: true)),
                    ("resource", .object([("type", .string("object"))])),
                    ("decision", .object([("type", .string("string")),
                                          ("enum", .array(["proceed", "needs_approval", "busy", "frozen"].map { .string($0) }))])),
                    ("would_send", object([("method", type("string")), ("path", type("string")),
                                           ("body", .object([("type", .array([.string("object"), .string("null")]))]))],
                                          required: ["method", "path", "body"])),
                    ("hostinger", object([("method", type("string")), ("path", type("string")),
                                          ("body", .object([("type", .array([.string("object"), .string("null")]))]))],
                                         required: ["method", "path", "body"])),
                    ("blocking_operation", type("string")),
                    ("freeze", object([("until", type("string")), ("reason", type("string"))], required: ["until", "reason"])),
                    ("approvals_required", type("integer")),
                    ("policy", .object([("type", .array([.string("object"), .string("null")]))])),
                    ("vps", .object([("type", .array([.string("object"), .string("null")]))])),
                    ("current", .object([("type", .array([.string("object"), .string("null")])),
                                         ("description", .string("The resource as Hostinger shows it now (null: it has no read of its own)."))])),
                    ("effects", .object([("type", .string("array")), ("items", type("string"))])),
                ], required: ["validate_only", "command", "vps_id", "resource", "decision", "would_send", "hostinger", "approvals_required",
                              "policy", "current", "effects"])),
                ("Me", object([("principal", type("string")),
                               ("grants", .object([("type", .string("array")), ("items", object([
                                   ("resource", type("string")), ("role", type("string")),
                                   ("permissions", .object([("type", .string("array")), ("items", type("string"))])),
                               ], required: ["resource", "role", "permissions"]))]))], required: ["principal", "grants"])),
                ("Batch", .object([("type", .string("object")), ("required", .array(["id", "command", "state", "counts"].map { .string($0) })),
                                   ("description", .string("A batch: {id, command, state, requested_by, reason, request, max_in_flight, max_failures, pause_seconds, counts, halt_reason, approval, children (GET one)}."))])),
                ("BatchPage", object([("data", .object([("type", .string("array")), ("items", reference("Batch"))])),
                                      ("next_before", type("integer", nullable: true))], required: ["data", "next_before"])),
                ("FreezeList", object([("data", .object([("type", .string("array")), ("items", object([
                    ("id", type("integer")), ("vps_id", type("integer", nullable: true)),
                    ("state", .object([("type", .string("string")), ("enum", .array([.string("active"), .string("upcoming")]))])),
                    ("starts_at", type("string")), ("ends_at", type("string")), ("reason", type("string")),
                ], required: ["id", "vps_id", "state", "starts_at", "ends_at", "reason"]))]))], required: ["data"])),
                ("FirewallPage", .object([("type", .string("object")), ("description", .string("Hostinger's firewall page ({data, meta}), filtered to the caller's grants."))])),
                ("Firewall", .object([("type", .string("object")), ("description", .string("Hostinger's firewall with its rules, as Hostinger returns it."))])),
                ("PublicKeyPage", .object([("type", .string("object")), ("description", .string("Hostinger's SSH key page ({data, meta}), filtered to the caller's grants."))])),
                ("PostInstallScriptPage", .object([("type", .string("object")), ("description", .string("Hostinger's post-install script page ({data, meta}), filtered to the caller's grants."))])),
                ("PostInstallScript", .object([("type", .string("object")), ("description", .string("Hostinger's post-install script, content included."))])),
                ("TemplateList", .object([("type", .string("array")), ("description", .string("Hostinger's template list, as Hostinger returns it."))])),
                ("Template", .object([("type", .string("object")), ("description", .string("Hostinger's Template, as Hostinger returns it."))])),
                ("DataCenterList", .object([("type", .string("array")),
                                            ("description", .string("Hostinger's data center list, as Hostinger returns it."))])),
                ("DockerProjectList", .object([("type", .string("array")),
                                                ("description", .string("Hostinger's Docker Manager project list, as Hostinger returns it."))])),
                ("VirtualMachine", .object([("type", .string("object")), ("description", .string("Hostinger's VirtualMachine, as Hostinger returns it.")),
                                            ("required", .array([.string("id"), .string("state")]))])),
                ("VirtualMachineList", .object([("type", .string("array")), ("items", reference("VirtualMachine"))])),
                ("Action", object([("id", type("integer")), ("name", type("string")), ("state", type("string")),
                                   ("created_at", dateTime), ("updated_at", dateTime)], required: ["id", "name", "state"])),
                ("DockerProjectContents", object([("content", type("string")), ("environment", type("string", nullable: true))],
                                                 required: ["content"])),
                ("DockerContainerList", .object([("type", .string("array")), ("items", object([
                    ("id", type("string")), ("name", type("string")), ("image", type("string")), ("command", type("string")),
                    ("status", type("string")), ("state", type("string")), ("health", type("string")),
                    ("ports", .object([("type", .string("array")), ("items", .object([("type", .string("object"))]))])),
                    ("stats", .object([("type", .array([.string("object"), .string("null")]))])),
                ], required: ["name", "state"]))])),
                ("DockerLogList", .object([("type", .string("array")), ("items", object([
                    ("service", type("string")),
                    ("entries", .object([("type", .string("array")), ("items", object([("timestamp", type("string")), ("line", type("string"))],
                                                                                        required: ["timestamp", "line"]))])),
                ], required: ["service", "entries"]))])),
                ("AttachedPublicKeyPage", hostingerPage(object([("id", type("integer")), ("name", type("string")), ("key", type("string"))],
                                                               required: ["id"]))),
                ("BackupPage", hostingerPage(object([("id", type("integer")), ("size", type("integer")), ("restore_time", type("integer")),
                                                     ("location", type("string")), ("created_at", dateTime)], required: ["id"]))),
                ("MonarxMetrics", object([("records", type("integer")), ("malicious", type("integer")), ("compromised", type("integer")),
                                          ("scanned_files", type("integer")), ("scan_started_at", dateTime),
                                          ("scan_ended_at", .object([("type", .array([.string("string"), .string("null")]))]))])),
                ("VpsMetrics", object(["cpu_usage", "ram_usage", "disk_space", "outgoing_traffic", "incoming_traffic", "uptime"].map { name -> (String, JSONValue) in
                    (name, .object([("type", .array([.string("object"), .string("null")])), ("properties", .object([
                        ("unit", type("string")),
                        ("usage", .object([("type", .string("object")), ("description", .string("UNIX time (seconds, as a key) ⇒ measurement.")),
                                           ("additionalProperties", type("number"))])),
                    ]))]))
                })),
                ("Snapshot", object([("id", type("integer")), ("restore_time", type("integer")), ("created_at", dateTime), ("expires_at", dateTime)],
                                    required: ["id"])),
                ("ActionPage", object([("data", .object([("type", .string("array")), ("items", .object([("type", .string("object"))]))])),
                                       ("meta", .object([("type", .string("object"))]))], required: ["data", "meta"])),
                ("Health", object([("status", .object([("type", .string("string")), ("enum", .array([.string("ok"), .string("ready")]))])),
                                   ("version", type("string"))],
                                  required: ["status"])),
                ("Document", .object([("type", .string("object")), ("required", .array([.string("openapi"), .string("paths")]))])),
            ])),
        ])
    }
}

extension String {
    fileprivate func replacingDots() -> String { String(map { $0 == "." ? "_" : $0 }) }

    /// `/v1/vps/{id}/actions` ⇒ `_vps_id_actions`; `/healthz` ⇒ `_healthz`.
    fileprivate func operationName() -> String {
        split(separator: "/").filter { $0 != "v1" }.map { $0.filter { $0 != "{" && $0 != "}" } }.map { "_" + $0 }.joined()
    }
}

extension BodyField {
    /// The field's JSON Schema, with its patterns and limits: the OpenAPI document's request
    /// bodies and the MCP server's tool inputs both use it, so the two cannot differ.
    public var jsonSchema: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("description", .string(summary))]
        switch kind {
        case .fqdn: members += [("type", .string("string")), ("maxLength", .number("253"))]
        case .ipAddress: members += [("type", .string("string")), ("anyOf", .array([.object([("format", .string("ipv4"))]), .object([("format", .string("ipv6"))])]))]
        case .password: members += [("type", .string("string")), ("minLength", .number("12")), ("format", .string("password")), ("writeOnly", .bool(true))]
        case .positiveInteger, .confirmation: members += [("type", .string("integer")), ("minimum", .number("1"))]
        case .positiveIntegers:
            members += [("type", .string("array")), ("minItems", .number("1")), ("maxItems", .number("100")), ("uniqueItems", .bool(true)),
                        ("items", .object([("type", .string("integer")), ("minimum", .number("1"))]))]
        case .projectName: members += [("type", .string("string")), ("pattern", .string("^[A-Za-z0-9_-]{3,64}$"))]
        case .boolean: members += [("type", .string("boolean"))]
        case .text(let maxBytes):
            // maxLength counts characters, the rule bytes: the byte limit is the stricter one.
            members += [("type", .string("string")), ("minLength", .number("1")), ("maxLength", .number(String(maxBytes)))]
        case .oneOf(let choices): members += [("type", .string("string")), ("enum", .array(choices.map { .string($0) }))]
        case .port: members += [("type", .string("string")), ("pattern", .string("^(any|[0-9]{1,5}(:[0-9]{1,5})?)$"))]
        case .networkSource, .sshPublicKey: members += [("type", .string("string")), ("minLength", .number("1"))]
        case .identifier: members += [("type", .string("string")), ("pattern", .string("^[A-Za-z0-9._-]{1,100}$"))]
        case .identifiers:
            members += [("type", .string("array")), ("maxItems", .number("10")), ("uniqueItems", .bool(true)),
                        ("items", .object([("type", .string("string")), ("pattern", .string("^[A-Za-z0-9._-]{1,100}$"))]))]
        }
        if secret && kind != .password { members.append(("writeOnly", .bool(true))) }
        return .object(members)
    }
}

extension PathParameter {
    /// A path parameter's JSON Schema: a name's pattern, or a positive integer.
    public static func jsonSchema(_ name: String) -> JSONValue {
        names.contains(name)
            ? .object([("type", .string("string")), ("pattern", .string("^[A-Za-z0-9_-]{3,64}$"))])
            : .object([("type", .string("integer")), ("minimum", .number("1"))])
    }
}
