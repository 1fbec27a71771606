import Testing
@testable import VpsgateCore

/// The pure parts of completion push: cursors, signatures, retries, and where a webhook may go.
@Suite struct PushTests {
    // MARK: Cursor

    @Test func aCursorReadsBackWhatItWrote() {
        for cursor in [EventCursor(transaction: 0, id: 0), EventCursor(transaction: 0x365, id: 42),
                       EventCursor(transaction: UInt64.max, id: Int64.max)] {
            #expect(EventCursor(cursor.description) == cursor)
        }
        #expect(EventCursor(transaction: 0x365, id: 42).description == "c1.365.2a")
    }

    @Test(arguments: ["", "c1", "c1.1", "c2.1.1", "c1.1.1.1", "c1.zz.1", "c1.-1.1", "c1.+1.1", "c1.A.1", "c1..1",
                      "c1." + String(repeating: "f", count: 17) + ".1", "c1.1.8000000000000000", " c1.1.1"])
    func anythingElseIsNotACursor(_ text: String) {
        #expect(EventCursor(text) == nil)
    }

    // MARK: Event

    @Test func anEventIsShownWithItsPublicIDAndDataAsWritten() throws {
        let event = EventRecord(id: 7, type: "operation.succeeded", occurredAt: 1_780_000_000_123_456, vpsID: 1001,
                                operationID: "0b7c1f7e-2f6a-4f7e-9a59-5f1d7c1e2a10", data: Array(#"{"operation":{"state":"succeeded"}}"#.utf8))
        let json = try JSONValue.parse(event.json())
        #expect(json["id"]?.stringValue == "evt_7")
        #expect(json["type"]?.stringValue == "operation.succeeded")
        #expect(json["occurred_at"]?.stringValue == "2026-05-28T20:26:40.123456Z")
        #expect(json["vps_id"]?.intValue == 1001)
        #expect(json["data"]?["operation"]?["state"]?.stringValue == "succeeded")
    }

    @Test func aWebhookBodyLinksTheOperationsConsolePageWhenTheConsoleIsConfigured() throws {
        let id = "0b7c1f7e-2f6a-4f7e-9a59-5f1d7c1e2a10"
        let event = EventRecord(id: 7, type: "operation.succeeded", occurredAt: 1_780_000_000_123_456, vpsID: 1001,
                                operationID: id, data: Array(#"{"operation":{"state":"succeeded"}}"#.utf8))
        let linked = try JSONValue.parse(event.webhookJSON(consoleURL: "https://gate.example.com/console"))
        #expect(linked["console_url"]?.stringValue == "https://gate.example.com/console/operations/" + id)
        #expect(linked["data"]?["operation"]?["state"]?.stringValue == "succeeded")
        #expect(event.webhookJSON(consoleURL: nil) == event.json(), "no console configured: the feed entry as it is")
        #expect(try JSONValue.parse(event.json())["console_url"] == nil, "the feed carries no link")
        let batch = EventRecord(id: 8, type: "batch.running", occurredAt: 1_780_000_000_123_456, vpsID: nil, operationID: nil, data: Array("{}".utf8))
        #expect(try JSONValue.parse(batch.webhookJSON(consoleURL: "https://gate.example.com/console"))["console_url"] == nil)
    }

    @Test func subscriptionsNameKnownTypesOrWildcards() {
        #expect(EventType.isSubscribable("operation.succeeded"))
        #expect(EventType.isSubscribable("operation.awaiting_approval"))
        #expect(EventType.isSubscribable("approval.*"))
        #expect(!EventType.isSubscribable("operation.exploded"))
        #expect(!EventType.isSubscribable("*"))
    }

    // MARK: Signature

    /// The example of the Standard Webhooks specification.
    @Test func theSignatureIsStandardWebhooks() {
        let key: [UInt8] = [49, 242, 144, 246, 191, 6, 41, 138, 171, 79, 8, 212, 60, 63, 8, 44, 246, 72, 163, 98, 218, 45, 164, 176]
        #expect(WebhookSignature.secretText(key) == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let signature = WebhookSignature.sign(key: key, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                              body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func base64PadsLikeRFC4648() {
        #expect(Base64.encode([]) == "")
        #expect(Base64.encode(Array("f".utf8)) == "Zg==")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.encode(Array("foo".utf8)) == "Zm9v")
        #expect(Base64.encode([0xfb, 0xff]) == "+/8=")
    }

    @Test func newKeysDiffer() {
        #expect(WebhookSignature.generateKey().count == 32)
        #expect(WebhookSignature.generateKey() != WebhookSignature.generateKey())
    }

    // MARK: Retries

    @Test func retriesFollowTheScheduleWithinTwentyPercent() {
        let schedule = WebhookRetrySchedule.standard
        #expect(schedule.delay(afterAttempts: 1, unit: 0.5) == 5)
        #expect(schedule.delay(afterAttempts: 2, unit: 0.5) == 30)
        #expect(schedule.delay(afterAttempts: 6, unit: 0.5) == 3600)
        #expect(schedule.delay(afterAttempts: 40, unit: 0.5) == 3600)
        #expect(schedule.delay(afterAttempts: 1, unit: 0) == 4)
        #expect(schedule.delay(afterAttempts: 1, unit: 0.999_999) < 6)
    }

    @Test func aScheduleIsParsedFromDurations() {
        #expect(WebhookRetrySchedule(parsing: "300ms, 2s,1m")?.delays == [0.3, 2, 60])
        for bad in ["", "0s", "-1s", "5", "5s,,6s", "1y"] {
            #expect(WebhookRetrySchedule(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func anAnswerMeansDeliveredRetryOrGone() {
        #expect(DeliveryOutcome.of(status: 200) == .delivered)
        #expect(DeliveryOutcome.of(status: 204) == .delivered)
        #expect(DeliveryOutcome.of(status: 410) == .gone)
        #expect(DeliveryOutcome.of(status: 301) == .retry)
        #expect(DeliveryOutcome.of(status: 404) == .retry)
        #expect(DeliveryOutcome.of(status: 500) == .retry)
        #expect(DeliveryOutcome.of(status: nil) == .retry)
    }

    // MARK: Destination

    @Test func aWebhookURLIsHTTPSWithAHostAndMaybeAPort() throws {
        let plain = try WebhookURL.parse("https://hooks.example.com/vpsgate?x=1").get()
        #expect(plain.host == "hooks.example.com" && plain.port == 443)
        let ported = try WebhookURL.parse("https://Hooks.Example.com:8443/x").get()
        #expect(ported.host == "hooks.example.com" && ported.port == 8443)
        let literal = try WebhookURL.parse("https://[2001:db8::1]:9000/x").get()
        #expect(literal.host == "2001:db8::1" && literal.port == 9000)
    }

    @Test(arguments: ["http://hooks.example.com/", "ftp://x/", "https://", "https://user@hooks.example.com/",
                      "https://hooks.example.com/#frag", "https://hooks example.com/", "https://hooks.example.com:0/",
                      "https://hooks.example.com:65536/", "https://hooks.example.com:x/", "https://[::1/", "https://[zz::1]/",
                      "https://a..b/", "https://.a/", "https://hooks.example.com/\u{7f}", "https://exämple.com/"])
    func otherURLsAreRefused(_ text: String) {
        #expect(throws: DestinationRefusal.self) { try WebhookURL.parse(text).get() }
    }

    @Test func networksParseInBothFamilies() throws {
        #expect(IPNetwork("10.0.0.0/8")?.contains([10, 1, 2, 3]) == true)
        #expect(IPNetwork("10.0.0.0/8")?.contains([11, 0, 0, 1]) == false)
        #expect(IPNetwork("127.0.0.1")?.prefixLength == 32)
        let v6 = try #require(IPNetwork("fc00::/7"))
        #expect(v6.contains(try #require(IPNetwork.parseIPv6("fd12:3456::1"))))
        #expect(!v6.contains(try #require(IPNetwork.parseIPv6("2001:db8::1"))))
        #expect(IPNetwork.parseIPv6("::") == [UInt8](repeating: 0, count: 16))
        #expect(IPNetwork.parseIPv6("::1") == [UInt8](repeating: 0, count: 15) + [1])
        #expect(IPNetwork.parseIPv6("::ffff:10.0.0.1") == [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1])
        #expect(IPNetwork.parseIPv6("1:2:3:4:5:6:7:8")?.count == 16)
        for bad in ["1::2::3", ":::", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1:2:3:4:5:6:7", "::1::"] {
            #expect(IPNetwork.parseIPv6(Substring(bad)) == nil, "\(bad)")
        }
        #expect(IPNetwork.list("127.0.0.1/32, ::1/128")?.count == 2)
        #expect(IPNetwork.list("127.0.0.1/33") == nil)
        #expect(IPNetwork.list("::1/129") == nil)
    }

    @Test(arguments: [
        ("127.0.0.1", "loopback"), ("10.2.3.4", "private"), ("172.16.0.1", "private"), ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"), ("100.64.0.1", "shared"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
        ("::1", "loopback"), ("fe80::1", "link-local"), ("fd00::1", "unique local"), ("::ffff:127.0.0.1", "IPv4-mapped"), ("::", "unspecified"),
    ])
    func privateAddressesAreRefused(_ address: String, _ kind: String) throws {
        let bytes = try #require(IPNetwork.parseIPv4(Substring(address)) ?? IPNetwork.parseIPv6(Substring(address)))
        let reason = try #require(DestinationPolicy.refusal(bytes, allow: []))
        #expect(reason.contains(kind))
    }

    /// IPv6 forms that carry an IPv4 address are judged by the address they carry.
    @Test(arguments: [
        ("2002:7f00:1::1", "6to4"), ("2002:a00:1::1", "6to4"), ("2002:c0a8:101::", "6to4"),
        ("::127.0.0.1", "IPv4-compatible"), ("::10.1.2.3", "IPv4-compatible"), ("::0.0.0.2", "IPv4-compatible"),
        ("64:ff9b::7f00:1", "NAT64"), ("64:ff9b::a9fe:a9fe", "NAT64"), ("64:ff9b:1::7f00:1", "local-use NAT64"),
        ("64:ff9b:1:ffff::808:808", "local-use NAT64"),
        ("::ffff:127.0.0.1", "IPv4-mapped"), ("::ffff:0:10.0.0.1", "IPv4-translated"), ("fec0::1", "site-local"),
        // Teredo: server 8.8.8.8, client 127.0.0.1 stored inverted (80ff:fffe); then a private server.
        ("2001:0:808:808::80ff:fffe", "Teredo"), ("2001:0:a00:1::f7f7:f7f7", "Teredo"),
        ("2001:db8:1:2:0:5efe:10.0.0.1", "ISATAP"), ("2001:db8:1:2:200:5efe:192.168.1.1", "ISATAP"),
    ])
    func addressesCarryingARefusedIPv4AddressAreRefused(_ address: String, _ kind: String) throws {
        let bytes = try #require(IPNetwork.parseIPv6(Substring(address)))
        let reason = try #require(DestinationPolicy.refusal(bytes, allow: []), "\(address) was allowed")
        #expect(reason.contains(kind), "\(reason)")
        // The same address from a DNS answer is refused the same way (the delivery's check).
        #expect(throws: DestinationRefusal.self) { try DestinationPolicy.check([[93, 184, 216, 34], bytes], allow: []).get() }
    }

    @Test(arguments: [
        "2002:808:808::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "::8.8.8.8", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001:db8:1:2:0:5efe:8.8.8.8", "2606:4700:4700::1111",
    ])
    func addressesCarryingAPublicIPv4AddressPass(_ address: String) throws {
        let bytes = try #require(IPNetwork.parseIPv6(Substring(address)))
        #expect(DestinationPolicy.refusal(bytes, allow: []) == nil, "\(address)")
    }

    @Test func theAllowListOpensTheCarriedAddressOnlyForTheMappedForm() throws {
        let loopback = try #require(IPNetwork.list("127.0.0.1/32"))
        #expect(DestinationPolicy.refusal(try #require(IPNetwork.parseIPv6("::ffff:127.0.0.1")), allow: loopback) == nil)
        for tunnelled in ["2002:7f00:1::1", "::127.0.0.1", "64:ff9b::7f00:1"] {
            #expect(DestinationPolicy.refusal(try #require(IPNetwork.parseIPv6(Substring(tunnelled))), allow: loopback) != nil, "\(tunnelled)")
        }
        // The IPv6 form itself may be allow-listed.
        let sixToFour = try #require(IPNetwork.list("2002:7f00:1::/48"))
        #expect(DestinationPolicy.refusal(try #require(IPNetwork.parseIPv6("2002:7f00:1::1")), allow: sixToFour) == nil)
    }

    @Test func publicAddressesPassAndTheAllowListOpensOnlyItsNetworks() throws {
        #expect(DestinationPolicy.refusal([93, 184, 216, 34], allow: []) == nil)
        #expect(DestinationPolicy.refusal(try #require(IPNetwork.parseIPv6("2606:4700::1")), allow: []) == nil)
        let loopback = try #require(IPNetwork.list("127.0.0.1/32"))
        #expect(DestinationPolicy.refusal([127, 0, 0, 1], allow: loopback) == nil)
        #expect(DestinationPolicy.refusal([127, 0, 0, 2], allow: loopback) != nil)
    }

    @Test func oneRefusedAddressRefusesTheName() {
        // A name resolving to a public and a private address: a rebinding attacker picks the private one.
        #expect(throws: DestinationRefusal.self) { try DestinationPolicy.check([[93, 184, 216, 34], [10, 0, 0, 1]], allow: []).get() }
        #expect(throws: DestinationRefusal.self) { try DestinationPolicy.check([], allow: []).get() }
        #expect((try? DestinationPolicy.check([[93, 184, 216, 34]], allow: []).get()) == [[93, 184, 216, 34]])
    }
}
