import Testing
import VpsgateCore

/// Account-level resources (docs/design.md#resources-and-grants): how grants name them, how commands route to
/// them, what their fields accept, and what a lost answer on one becomes.
@Suite struct ResourceTests {
    @Test func grantsNameAResourceByTypeAndIdOrEveryOne() {
        #expect(Target.parse("firewall:4001") == Target(.firewall, 4001))
        #expect(Target.parse("public_key:*") == Target(.publicKey, nil))
        #expect(Target.parse("post_install_script:6001") == Target(.postInstallScript, 6001))
        #expect(Target.parse("vps:1001") == .vps(1001))
        #expect(Target.parse("account") == .account && Target.parse("account:*") == .account)
        for bad in ["firewall", "firewall:", "firewall:0", "firewall:-1", "firewall:01", "account:7", "disk:1", "vps:1001:2", "*", ""] {
            #expect(Target.parse(bad) == nil, "\(bad)")
        }
        #expect(Target(.firewall, nil).text == "firewall:*" && Target.account.text == "account")
        #expect(Target(.firewall, 4001).description == "firewall 4001" && Target.account.description == "the account")
    }

    @Test func commandsRouteToTheResourceTheirPathNames() throws {
        let (rule, target, parameters) = try #require(Command.match(method: "PUT", path: "/v1/firewalls/4001/rules/4101"))
        #expect(rule.name == "firewall.rule.update" && target == Target(.firewall, 4001) && parameters == ["ruleId": "4101"])
        #expect(Command.match(method: "POST", path: "/v1/vps")?.0.name == "vps.purchase")
        #expect(Command.match(method: "POST", path: "/v1/vps")?.1 == .account)
        #expect(Command.match(method: "DELETE", path: "/v1/public-keys/5001")?.1 == Target(.publicKey, 5001))
        #expect(Command.match(method: "POST", path: "/v1/firewalls/0/rules") == nil)
        #expect(Command.match(method: "POST", path: "/v1/firewalls/4001") == nil)
        #expect(Command.match(method: "GET", path: "/v1/firewalls") == nil)
        #expect(Command.match(method: "DELETE", path: "/v1/firewalls/4001/rules/x") == nil)
    }

    @Test func ruleFieldsFollowHostingersRules() {
        for port in ["443", "1", "65535", "1024:2048", "any"] { #expect(Validators.isPort(port), "\(port)") }
        for port in ["0", "65536", "2048:1024", "1:2:3", "", "http", "99999999999999999999", "+80"] { #expect(!Validators.isPort(port), "\(port)") }
        for source in ["203.0.113.7", "203.0.113.0/24", "2001:db8::/32", "10.0.0.1-10.0.0.9", "::1"] {
            #expect(Validators.isNetworkSource(source), "\(source)")
        }
        for source in ["10.0.0.0/33", "2001:db8::/129", "10.0.0.1-", "example.com", "10.0.0.0/", ""] {
            #expect(!Validators.isNetworkSource(source), "\(source)")
        }
    }

    @Test func aRuleSaysAnySourceExactlyWithAnyDetail() throws {
        let create = try #require(Command.named("firewall.rule.create"))
        let body = { (source: String, detail: String) in
            JSONValue.object([("protocol", .string("TCP")), ("port", .string("22")), ("source", .string(source)), ("source_detail", .string(detail))])
        }
        #expect((try? create.prepare(Target(.firewall, 4001), parameters: [:], body: body("any", "any")).get()) != nil)
        #expect((try? create.prepare(Target(.firewall, 4001), parameters: [:], body: body("custom", "10.0.0.0/8")).get()) != nil)
        for (source, detail) in [("any", "10.0.0.0/8"), ("custom", "any")] {
            guard case .failure(let errors) = create.prepare(Target(.firewall, 4001), parameters: [:], body: body(source, detail)) else {
                Issue.record("\(source) with \(detail) was accepted")
                continue
            }
            #expect(errors.fields.map(\.field) == ["source_detail"])
        }
    }

    @Test func keysAndCatalogueIdentifiers() {
        #expect(Validators.isSSHPublicKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeployKey deploy@host"))
        for key in ["ssh-ed25519", "ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIDeployKey", "ssh-ed25519 short",
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeployKey a\nssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDeployKey b"] {
            #expect(!Validators.isSSHPublicKey(key), "\(key)")
        }
        #expect(Validators.isIdentifier("hostingercom-vps-kvm2-usd-1m"))
        for text in ["", "a b", "x;y", String(repeating: "a", count: 101), "ü"] { #expect(!Validators.isIdentifier(text), "\(text)") }
    }

    @Test func hashedFieldsAreKeptAsTheirDigestAtAnyDepth() {
        let answer = JSONValue.object([("id", .number("6001")), ("content", .string("echo hi")), ("nested", .object([("content", .string("x"))]))])
        let kept = Redaction.hashing(answer, fields: ["content"])
        #expect(kept["content"]?.stringValue == Redaction.digest("echo hi") && Redaction.digest("echo hi").count == 71)
        #expect(kept["nested"]?["content"]?.stringValue == Redaction.digest("x"))
        #expect(kept["id"] == .number("6001"))
        #expect(Redaction.digest("") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let audited = Redaction.auditable(.object([("name", .string("s")), ("content", .string(""))]), declared: ["name", "content"],
                                          secrets: [], hashed: ["content"])
        #expect(audited["content"]?.stringValue == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(audited["name"]?.stringValue == "s")
    }

    func operation(_ command: String, _ target: Target, state: OperationState = .unknown, error: JSONValue? = nil) -> OperationRecord {
        var record = OperationRecord(id: "op", target: target, command: command, state: state, requestedBy: "a", correlationID: "c",
                                     idempotencyKey: "k", createdAt: 1, updatedAt: 1)
        record.error = error
        return record
    }

    @Test func aLostDeleteIsSettledByWhetherTheResourceIsStillThere() {
        let delete = operation("firewall.delete", Target(.firewall, 4001))
        guard case .apply(let gone) = ReconcileDecision.resourceAnswerLost(delete, deletes: true, read: .absent, checks: 1),
            case .apply(let still) = ReconcileDecision.resourceAnswerLost(delete, deletes: true, read: .present, checks: 1)
        else { Issue.record("a delete was not settled"); return }
        #expect(gone.state == .succeeded && gone.outcome == .adopted)
        #expect(still.state == .failed && still.error?["reason"]?.stringValue == "not_applied")
        // An unreadable resource is looked at again, then left in doubt, never guessed.
        guard case .later = ReconcileDecision.resourceAnswerLost(delete, deletes: true, read: .unreadable("503"), checks: 1) else {
            Issue.record("an unreadable resource was guessed at"); return
        }
        guard case .apply(let doubt) = ReconcileDecision.resourceAnswerLost(delete, deletes: true, read: .unreadable("503"), checks: 9) else {
            Issue.record("never left in doubt"); return
        }
        #expect(doubt.state == .unknown && doubt.error?["reason"]?.stringValue == "answer_lost")
    }

    @Test func looksAtAnOpenOperationBackOffFrom250MillisecondsTo10Seconds() {
        #expect((0...9).map { ReconcileDecision.backoffMilliseconds(checks: $0) }
            == [250, 250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000])
        #expect(ReconcileDecision.backoffMilliseconds(checks: 1_000) == 10_000)
        // An unreadable resource is retried for about as long as before (16 s) before doubt.
        #expect((1..<7).map { ReconcileDecision.backoffMilliseconds(checks: $0) }.reduce(0, +) == 15_750)
    }

    @Test func aLostCreationBecomesUnknownWithWhatToCheckOnce() {
        let create = operation("firewall.create", .account)
        guard case .apply(let doubt) = ReconcileDecision.resourceAnswerLost(create, deletes: false, read: .unreadable("-"), checks: 1) else {
            Issue.record("not moved to unknown"); return
        }
        #expect(doubt.state == .unknown && doubt.outcome == .ambiguous)
        #expect(doubt.error?["detail"]?.stringValue?.contains("the account") == true)
        let already = operation("firewall.create", .account, error: doubt.error)
        guard case .later = ReconcileDecision.resourceAnswerLost(already, deletes: false, read: .unreadable("-"), checks: 2) else {
            Issue.record("moved again"); return
        }
    }
}
