import VpsgateCore

/// One API request being handled against a copy of the state.
struct Context {
    var state: SimState
    let now: Int64
    let body: JSONValue
    /// How a fault changes the action this request creates.
    let overrides: ActionOverrides
    /// The query string, undecoded.
    let query: String

    static let perPage = 15

    init(state: SimState, now: Int64, body: JSONValue = .object([]), overrides: ActionOverrides = ActionOverrides(), query: String = "") {
        self.state = state
        self.now = now
        self.body = body
        self.overrides = overrides
        self.query = query
    }

    // MARK: - Routing

    /// Answers `method` on `path` (the part after `/api/vps/v1`) with the route that fits it,
    /// or Hostinger's 404 for unknown routes.
    mutating func route(_ method: String, _ path: String) -> SimResponse {
        let parts = Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst())
        for route in Self.routes where route.method == method {
            if let parameters = route.match(parts) { return route.handle(&self, parameters) }
        }
        return Simulator.routeNotFound()
    }

    /// A route on one VM: unknown or malformed VM ids answer 404 before `handle` runs.
    static func vm(_ method: String, _ template: String,
                   _ handle: @escaping @Sendable (inout Context, VirtualMachine, Parameters) -> SimResponse) -> Route {
        Route(method, template) { context, parameters in
            guard let vm = parameters.id("virtualMachineId").flatMap({ context.state.vms[$0] }) else {
                return Simulator.routeNotFound()
            }
            return handle(&context, vm, parameters)
        }
    }

    // MARK: - Query

    /// The query parameter `name`, percent-decoded (`+` is a space, as forms write it).
    func queryValue(_ name: String) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map(Self.percentDecoded) == name { return parts.count > 1 ? Self.percentDecoded(parts[1]) : "" }
        }
        return nil
    }

    /// `?page=N`, 1 when absent or not a page number.
    var page: Int { queryValue("page").flatMap { Int($0) }.flatMap { $0 >= 1 ? $0 : nil } ?? 1 }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var rest = text.utf8[...]
        while let byte = rest.popFirst() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), rest.count >= 2,
                      let value = UInt8(String(decoding: rest.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                rest = rest.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Actions

    /// Records an action on `vm` and answers with it, as Hostinger does for every VM mutation.
    mutating func act(_ vm: VirtualMachine, _ name: String, _ effect: Effect, forceError: Bool = false) -> SimResponse {
        .json(200, startAction(on: vm, name, effect, forceError: forceError).json(now: now))
    }

    /// Records an action on `vm`, puts the VM in the effect's transitional state, and returns
    /// the action (already settled when actions take no time).
    mutating func startAction(on vm: VirtualMachine, _ name: String, _ effect: Effect, forceError: Bool = false) -> Action {
        let id = state.nextActionID
        state.nextActionID += 1
        let delay = Int64(state.actionDelayMilliseconds) * 1000
        var action = Action(id: id, vmID: vm.id, name: overrides.name ?? name, createdAt: now, completesAt: now + delay,
                            outcome: (overrides.error || forceError) ? "error" : "success", effect: effect)
        if state.extraStates { action.startedAt = now + delay / 2 }
        action.pendingState = overrides.pendingState
        state.actions[id] = action
        state.unsettled.insert(id)
        state.actionsByVM[vm.id, default: []].append(id)
        // The handler may have changed the VM already (a Docker project placed): start from the stored one.
        var updated = state.vms[vm.id] ?? vm
        if updated.pendingActions == 0 { updated.stateBeforeAction = updated.state }
        updated.pendingActions += 1
        // A request Hostinger is bound to fail (recovery stop outside recovery) leaves the state alone.
        if let transitional = effect.transitionalState, !forceError { updated.state = transitional }
        state.vms[vm.id] = updated
        // A zero delay settles at once, so that it behaves like an instant action.
        if delay == 0 { state.settle(id) }
        return state.actions[id] ?? action
    }

    // MARK: - Lists

    /// One page of `items` in Hostinger's `{data, meta}` shape.
    func paginated(_ items: [JSONValue]) -> SimResponse {
        let start = (page - 1) * Self.perPage
        let slice = start < items.count ? Array(items[start..<min(start + Self.perPage, items.count)]) : []
        return .json(200, .object([
            ("data", .array(slice)),
            ("meta", .object([
                ("current_page", .number(String(page))), ("per_page", .number(String(Self.perPage))),
                ("total", .number(String(items.count))),
            ])),
        ]))
    }

    /// Hostinger's answer to a synchronous delete.
    static var requestAccepted: SimResponse { .json(200, .object([("message", .string("Request accepted"))])) }
}
