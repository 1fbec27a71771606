import VpsgateCore

/// New VMs: buying one (`POST /virtual-machines`) and setting up one in state `initial`
/// (`POST …/setup`). Both answer at once and leave an action (`ct_create`) on the VM that
/// takes it through `creating` to `running`; if that action fails the VM is `initial`
/// again, ready for another setup ("complete the setup manually", the document says).
extension Context {
    /// The document's SetupRequest, with its members named `prefix` + name.
    private func setupErrors(in object: JSONValue, prefix: String = "") -> [(String, [String])] {
        var errors = Self.errors([
            ("template_id", templateRule), ("data_center_id", Self.existsRule(state.dataCenters.keys, required: true)),
            ("post_install_script_id", Self.existsRule(state.postInstallScripts.keys, required: false)),
            ("password", Self.passwordRule(required: false)), ("hostname", Self.hostnameRule(required: false)),
            ("install_monarx", Self.booleanRule), ("enable_backups", Self.booleanRule),
            ("ns1", Self.ipRule(required: false)), ("ns2", Self.ipRule(required: false)),
        ], in: object, prefix: prefix)
        switch object["public_key"] {
        case nil, .some(.null): break
        case .some(.object):
            errors += Self.errors([("name", Self.stringRule()), ("key", Self.publicKeyRule())],
                                  in: object["public_key"] ?? .null, prefix: prefix + "public_key.")
        default: errors.append((prefix + "public_key", ["The \(prefix)public key field must be an object with name and key."]))
        }
        return errors
    }

    /// The setup a valid SetupRequest asks for.
    private static func setup(from object: JSONValue) -> VMSetup {
        let key = object["public_key"].flatMap { given -> (name: String, key: String)? in
            guard let name = given["name"]?.stringValue, let key = given["key"]?.stringValue else { return nil }
            return (name, key)
        }
        return VMSetup(
            templateID: object["template_id"]?.intValue ?? 0, dataCenterID: object["data_center_id"]?.intValue ?? 0,
            hostname: object["hostname"]?.stringValue, ns1: object["ns1"]?.stringValue, ns2: object["ns2"]?.stringValue,
            installMonarx: object["install_monarx"]?.boolValue ?? false, enableBackups: object["enable_backups"]?.boolValue ?? true,
            publicKey: key)
    }

    /// Answers the VM (not an Action: the document), already `creating`. A VM in any other
    /// state than `initial` is a 422, after the body has been validated (as Laravel checks
    /// the form before the controller looks at the VM).
    mutating func setup(_ vm: VirtualMachine) -> SimResponse {
        let errors = setupErrors(in: body)
        guard errors.isEmpty else { return Self.validationError(errors) }
        guard vm.state == "initial" else {
            return Self.refusal("virtual_machine", "The virtual machine must be in the initial state to be set up.")
        }
        _ = startAction(on: vm, "ct_create", .setup(Self.setup(from: body)))
        return .json(200, vmJSON(state.vms[vm.id] ?? vm))
    }

    /// Buys a VM of the plan `item_id` names and sets it up with `setup`: answers the order
    /// and the new VM.
    mutating func purchase() -> SimResponse {
        var errors = Self.errors([
            ("item_id", Self.inRule(Plan.catalogue.keys.sorted())), ("payment_method_id", Self.integerRule(required: false)),
            ("coupons", Self.couponsRule),
        ], in: body)
        switch body["setup"] {
        case .some(.object): errors += setupErrors(in: body["setup"] ?? .null, prefix: "setup.")
        case nil, .some(.null): errors.append(("setup", ["The setup field is required."]))
        default: errors.append(("setup", ["The setup field must be an object."]))
        }
        guard errors.isEmpty else { return Self.validationError(errors) }
        let plan = Plan.catalogue[body["item_id"]?.stringValue ?? ""] ?? .kvm2
        let setup = Self.setup(from: body["setup"] ?? .null)
        let vm = newVM(plan: plan, dataCenterID: setup.dataCenterID)
        state.vms[vm.id] = vm
        let order = orderJSON(plan: plan, subscriptionID: vm.subscriptionID)
        _ = startAction(on: vm, "ct_create", .setup(setup))
        return .json(200, .object([("order", order), ("virtual_machine", vmJSON(state.vms[vm.id] ?? vm))]))
    }

    /// A VM just bought: `initial`, no template, no backups yet.
    private mutating func newVM(plan: Plan, dataCenterID: Int) -> VirtualMachine {
        var id = state.ids.next(\.virtualMachine)
        // `/__sim/vms` may have taken the id already.
        while state.vms[id] != nil { id = state.ids.next(\.virtualMachine) }
        let index = id - 1000
        var vm = VirtualMachine(
            id: id, hostname: VirtualMachine.defaultHostname(id), state: "initial", ns1: "1.1.1.1", ns2: "8.8.8.8", ns3: nil,
            ipv4: [IPAddress(id: 2000 + index, address: "198.51.100.\(id % 254 + 1)", ptr: nil)], templateID: nil, firewallID: nil,
            backups: [], createdAt: now, subscriptionID: "Azz353Uhl1xC54p\(id)")
        vm.plan = plan
        vm.dataCenterID = dataCenterID
        return vm
    }

    /// Coupons are accepted and give no discount (the simulator has no price rules).
    private static var couponsRule: Rule {
        { value in
            guard let value, !value.isNull else { return [] }
            guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                return ["The FIELD field must be an array of strings."]
            }
            return []
        }
    }

    /// Paid at once with the account's default method; 21 % VAT (the account is Dutch).
    private mutating func orderJSON(plan: Plan, subscriptionID: String) -> JSONValue {
        let address: JSONValue = .object([
            ("first_name", .string("Sim")), ("last_name", .string("Account")), ("company", .null), ("address_1", .null),
            ("address_2", .null), ("city", .null), ("state", .null), ("zip", .null), ("country", .string("NL")), ("phone", .null),
            ("email", .string("sim-account@example.com")),
        ])
        return .object([
            ("id", Self.number(state.ids.next(\.order))), ("subscription_id", .string(subscriptionID)), ("status", .string("completed")),
            ("currency", .string("USD")), ("subtotal", Self.number(plan.price)), ("total", Self.number((plan.price * 121 + 50) / 100)),
            ("billing_address", address), ("created_at", Self.time(now)), ("updated_at", Self.time(now)),
        ])
    }
}
