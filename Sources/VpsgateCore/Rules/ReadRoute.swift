/// Every route that only reads: the one table that routing, metric labels and the OpenAPI
/// document are built from.
public enum ReadRoute: String, CaseIterable, Sendable {
    case listVPS = "/v1/vps"
    case getVPS = "/v1/vps/{id}"
    case vpsActions = "/v1/vps/{id}/actions"
    case dockerProjects = "/v1/vps/{id}/docker"
    case listOperations = "/v1/operations"
    case getOperation = "/v1/operations/{operationId}"
    case operationTimeline = "/v1/operations/{operationId}/timeline"
    case approvals = "/v1/approvals"
    case events = "/v1/events"
    case templates = "/v1/templates"
    case template = "/v1/templates/{id}"
    case dataCenters = "/v1/data-centers"
    case firewalls = "/v1/firewalls"
    case firewall = "/v1/firewalls/{id}"
    case publicKeys = "/v1/public-keys"
    case scripts = "/v1/post-install-scripts"
    case script = "/v1/post-install-scripts/{id}"
    case me = "/v1/me"
    case batches = "/v1/batches"
    case batch = "/v1/batches/{id}"
    case healthz = "/healthz"
    case readyz = "/readyz"
    case openAPI = "/openapi.json"
    case metrics = "/metrics"

    public var path: String { rawValue }

    /// The service's own routes, outside `/v1` (no principal needed).
    public var isService: Bool { !path.hasPrefix("/v1/") }

    /// The bounded metric label: `GET /v1/vps/{id}`, or the path of a service route.
    public var label: String { isService ? path : "GET " + path }


    /// The route whose template `path` fits, with its one id segment (VPS or operation id,
    /// not yet validated), if any.
    public static func match(_ path: String) -> (route: ReadRoute, id: Substring?)? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for route in allCases {
            let template = route.templateSegments
            guard template.count == segments.count else { continue }
            var id: Substring?
            var matched = true
            for (pattern, segment) in zip(template, segments) {
                if pattern.hasPrefix("{") {
                    guard !segment.isEmpty else { matched = false; break }
                    id = segment
                } else if pattern != segment {
                    matched = false
                    break
                }
            }
            if matched { return (route, id) }
        }
        return nil
    }

    private var templateSegments: [Substring] { path.split(separator: "/", omittingEmptySubsequences: false) }

    /// The OpenAPI description: summary, 200 schema and query parameters.
    public var summary: String {
        switch self {
        case .listVPS: "VPS from Hostinger, filtered to the caller's grants (vps:read)."
        case .getVPS: "One VPS from Hostinger (vps:read)."
        case .vpsActions: "Hostinger's action list for the VPS (vps:read)."
        case .dockerProjects: "The VPS's Docker Manager projects, from Hostinger (docker:read)."
        case .listOperations: "Operations the caller may see, newest first."
        case .getOperation: "One operation, refreshed from Hostinger while it is not terminal; with wait, answered when it is terminal."
        case .operationTimeline: "One operation and its history in order: audit rows, events (state changes, Hostinger's action states) and approval decisions; for whoever may read the operation."
        case .approvals: "Operations awaiting approval that the caller may approve (vps:approve), oldest first, each with its requester, the approvals given and required, when it expires, and the plan of its kept request (what would be sent, secrets redacted; the decision; the effects)."
        case .templates: "The OS templates VMs can be set up or recreated with, from Hostinger (any principal)."
        case .template: "One OS template, from Hostinger (any principal)."
        case .dataCenters: "The data centers a VM can be set up in, from Hostinger (any principal)."
        case .firewalls: "The account's firewalls the caller may read (firewall:read), from Hostinger."
        case .firewall: "One firewall with its rules (firewall:read), from Hostinger."
        case .publicKeys: "The account's SSH public keys the caller may read (public_key:read), from Hostinger."
        case .scripts: "The account's post-install scripts the caller may read (script:read), from Hostinger."
        case .script: "One post-install script, its content included (script:read), from Hostinger."
        case .me: "The caller: its principal and grants, each with its role's permissions (what a client may offer it)."
        case .batches: "The caller's batches, newest first."
        case .batch: "One batch with its children (its requester, or vps:read or vps:approve on every VPS of it)."
        case .events: "Events (operation state changes, approval decisions) on VPS the caller may read, in order; 410 cursor-expired past retention."
        case .healthz: "Liveness."
        case .readyz: "Readiness: database reachable and schema current."
        case .openAPI: "This document."
        case .metrics: "Prometheus text format; nginx exposes it on an internal listener only."
        }
    }

    public var schema: String {
        switch self {
        case .listVPS: "VirtualMachineList"
        case .getVPS: "VirtualMachine"
        case .vpsActions: "ActionPage"
        case .dockerProjects: "DockerProjectList"
        case .listOperations: "OperationPage"
        case .approvals: "ApprovalPage"
        case .operationTimeline: "Timeline"
        case .getOperation: "Operation"
        case .events: "EventPage"
        case .templates: "TemplateList"
        case .template: "Template"
        case .dataCenters: "DataCenterList"
        case .firewalls: "FirewallPage"
        case .firewall: "Firewall"
        case .publicKeys: "PublicKeyPage"
        case .scripts: "PostInstallScriptPage"
        case .script: "PostInstallScript"
        case .me: "Me"
        case .batches: "BatchPage"
        case .batch: "Batch"
        case .healthz, .readyz: "Health"
        case .openAPI: "Document"
        case .metrics: "Metrics"
        }
    }

    public var query: [(name: String, type: String, summary: String)] {
        switch self {
        case .vpsActions, .firewalls, .publicKeys, .scripts: [("page", "integer", "Page number, from 1.")]
        case .batches: [("limit", "integer", "1 to 200, default 50."), ("before", "integer", "Continue after this batch id.")]
        case .listOperations:
            [("vps", "integer", "Only this VPS."), ("state", "string", "Only this state."),
             ("requester", "string", "Only operations this principal requested."),
             ("command", "string", "Only this command (vps.restart, …)."),
             ("resource", "string", "Only this resource: vps:1001, firewall:12, firewall:* (every firewall) or account."),
             ("since", "string", "Only operations created at or after this RFC 3339 time."),
             ("until", "string", "Only operations created before this RFC 3339 time."),
             ("limit", "integer", "1 to 200, default 50."), ("before", "string", "Continue after this operation id (the previous page's next_before).")]
        case .getOperation:
            [("wait", "integer", "Seconds (0 to 50) to wait for the operation to become terminal; answered at once, with Retry-After, when this instance has no waiting place free.")]
        case .events:
            [("after", "string", "The `next` cursor of the previous page (absent: from the oldest event kept)."),
             ("limit", "integer", "1 to 500, default 100."),
             ("wait", "integer", "Seconds (0 to 50) an empty page waits for the next event.")]
        default: []
        }
    }
}
