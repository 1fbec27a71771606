import Testing
import VpsgateCore

@Suite struct ConfigurationTests {
    @Test func defaultsNeedNoEnvironment() throws {
        let configuration = try Configuration(environment: [:])
        #expect(configuration.listen == .unix(path: "/run/vpsgate/vpsgate.sock"))
        #expect(configuration.allowedPeers.isEmpty && configuration.readTimeoutMilliseconds == 10_000)
        #expect(configuration.workers == 16)
        #expect(configuration.maxBodyBytes == 65536)
        #expect(configuration.socketMode == 0o660)
        #expect(configuration.databaseURL == Configuration.defaultDatabaseURL)
        #expect(configuration.debugRoutes == false)
    }

    @Test func readsEverySetting() throws {
        let configuration = try Configuration(environment: [
            "VPSGATE_LISTEN": "unix:/run/vpsgate/1.sock", "VPSGATE_SOCKET_MODE": "0600",
            "VPSGATE_SOCKET_GROUP": "www-data", "VPSGATE_WORKERS": "64",
            "VPSGATE_DATABASE_URL": "postgresql://app@db:5432/vpsgate", "VPSGATE_MAX_BODY_BYTES": "4096",
            "VPSGATE_SHUTDOWN_TIMEOUT": "5", "VPSGATE_MIGRATIONS_DIR": "/opt/vpsgate/Migrations",
            "VPSGATE_INSTANCE": "a", "VPSGATE_LOG_LEVEL": "DEBUG", "VPSGATE_DEBUG_ROUTES": "1",
        ])
        #expect(configuration.listen == .unix(path: "/run/vpsgate/1.sock"))
        #expect(configuration.socketMode == 0o600)
        #expect(configuration.socketGroup == "www-data")
        #expect(configuration.workers == 64)
        #expect(configuration.databaseURL == "postgresql://app@db:5432/vpsgate")
        #expect(configuration.maxBodyBytes == 4096)
        #expect(configuration.shutdownTimeoutSeconds == 5)
        #expect(configuration.migrationsDirectory == "/opt/vpsgate/Migrations")
        #expect(configuration.instance == "a")
        #expect(configuration.logLevel == "debug")
        #expect(configuration.debugRoutes)
    }

    @Test(arguments: [
        ("VPSGATE_LISTEN", ":9000"), ("VPSGATE_LISTEN", "localhost"), ("VPSGATE_LISTEN", "127.0.0.1:0"),
        ("VPSGATE_LISTEN", "example.com:9000"), ("VPSGATE_LISTEN", "unix:"),
        ("VPSGATE_SOCKET_MODE", "0666"), ("VPSGATE_SOCKET_MODE", "rw"),
        ("VPSGATE_WORKERS", "0"), ("VPSGATE_WORKERS", "many"), ("VPSGATE_MAX_BODY_BYTES", "-1"),
        ("VPSGATE_DATABASE_URL", "mysql://x"), ("VPSGATE_LOG_LEVEL", "loud"), ("VPSGATE_DEBUG_ROUTES", "yes"),
        ("VPSGATE_ALLOWED_PEERS", "10.0.0.1"), ("VPSGATE_READ_TIMEOUT_MS", "0"), ("HOSTINGER_API_URL", "http://127.0.0.1@evil.tld"),
    ])
    func rejectsUnusableValuesNamingTheVariable(_ variable: String, _ value: String) {
        #expect {
            try Configuration(environment: [variable: value])
        } throws: { error in
            (error as? ConfigurationError)?.variable == variable
        }
    }

    @Test func aTCPListenerNeedsItsAllowedPeers() throws {
        #expect(throws: ConfigurationError.self) { try Configuration(environment: ["VPSGATE_LISTEN": "10.0.1.11:9000"]) }
        for bad in ["", "10.0.0.0/33", "10.0.0.1/24", "010.0.0.1", "10.0.0", "10.0.0.1,", "nginx.internal", "10.0.0.1 /32"] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                try Configuration(environment: ["VPSGATE_LISTEN": "10.0.1.11:9000", "VPSGATE_ALLOWED_PEERS": bad])
            }
        }
        let configuration = try Configuration(environment: [
            "VPSGATE_LISTEN": "10.0.1.11:9000", "VPSGATE_ALLOWED_PEERS": "10.0.1.5, 10.0.2.0/24", "VPSGATE_READ_TIMEOUT_MS": "2500",
        ])
        #expect(configuration.allowedPeers.map(\.description) == ["10.0.1.5/32", "10.0.2.0/24"])
        #expect(configuration.allowedPeers[1].contains(0x0A00_02FE) && !configuration.allowedPeers[1].contains(0x0A00_03FE))
        #expect(configuration.readTimeoutMilliseconds == 2500)
    }

    @Test func aHostinger429PausesAtMostTheConfiguredCap() throws {
        #expect(try Configuration(environment: [:]).budgetMaxPauseSeconds == 900)
        #expect(try Configuration(environment: ["VPSGATE_BUDGET_MAX_PAUSE": "2m"]).budgetMaxPauseSeconds == 120)
        #expect(try Configuration(environment: ["VPSGATE_BUDGET_MAX_PAUSE": "1h"]).budgetMaxPauseSeconds == 3600)
        for bad in ["0s", "15", "2h", "24h", "soon"] {
            #expect(performing: { try Configuration(environment: ["VPSGATE_BUDGET_MAX_PAUSE": bad]) }, throws: { error in
                guard let error = error as? ConfigurationError else { return false }
                return error.variable == "VPSGATE_BUDGET_MAX_PAUSE" && error.value == bad
            })
        }
        #expect(throws: ConfigurationError("VPSGATE_BUDGET_MAX_PAUSE", "2h",
                                           "must be at most 1h (the database caps every pause there); use vpsgate budget resume to lift one sooner")) {
            try Configuration(environment: ["VPSGATE_BUDGET_MAX_PAUSE": "2h"])
        }
    }

    @Test func neverEchoesTheDatabaseURL() {
        do {
            _ = try Configuration(environment: ["VPSGATE_DATABASE_URL": "mysql://root:hunter2@db"])
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func transactionPoolingNeedsADirectListenConnection() throws {
        let direct = try Configuration(environment: ["VPSGATE_DATABASE_URL": "postgresql://app@db:5432/vpsgate"])
        #expect(direct.databasePoolMode == .session)
        #expect(direct.listenDatabaseURL == "postgresql://app@db:5432/vpsgate")

        let pooled = try Configuration(environment: [
            "VPSGATE_DATABASE_URL": "postgresql://app@pool:6432/vpsgate", "VPSGATE_DATABASE_POOL_MODE": "transaction",
            "VPSGATE_LISTEN_DATABASE_URL": "postgresql://app@db1:5432,db2:5432/vpsgate?target_session_attrs=read-write",
        ])
        #expect(pooled.databasePoolMode == .transaction)
        #expect(pooled.listenDatabaseURL == "postgresql://app@db1:5432,db2:5432/vpsgate?target_session_attrs=read-write")

        // LISTEN through a transaction-mode pooler would silently hear nothing: refused.
        #expect(throws: ConfigurationError.self) {
            try Configuration(environment: ["VPSGATE_DATABASE_URL": "postgresql://app@pool:6432/vpsgate",
                                            "VPSGATE_DATABASE_POOL_MODE": "transaction"])
        }
        #expect(throws: ConfigurationError.self) {
            try Configuration(environment: ["VPSGATE_DATABASE_POOL_MODE": "statement"])
        }
        #expect(throws: ConfigurationError.self) {
            try Configuration(environment: ["VPSGATE_LISTEN_DATABASE_URL": "db:5432"])
        }
    }
}
