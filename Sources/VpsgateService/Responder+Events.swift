import FastCGI
import Platform
import VpsgateCore

/// `GET /v1/events`: the events on VPS the caller may read, in order, from an opaque
/// cursor; with `wait=S`, an empty page waits up to S seconds for the next event.
extension Responder {
    func listEvents(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var filters = FieldErrors()
        let after = requestContext.queryValue("after").map { text in
            let cursor = EventCursor(text)
            if cursor == nil { filters.add("after", "must be a cursor this feed returned (its `next`)") }
            return cursor
        } ?? nil
        let limit = requestContext.queryValue("limit").map { Int($0) } ?? 100
        if !(limit.map { (1...500).contains($0) } ?? false) { filters.add("limit", "must be a whole number from 1 to 500") }
        let wait = waitSeconds(requestContext, &filters)
        guard filters.isEmpty, let limit else { return invalidQuery(filters, requestContext) }
        do {
            let scope = try store.readableScope(principal, of: .vps)
            var page = try store.events(after: after, principal: principal, scope: scope, limit: limit)
            if page.events.isEmpty && !page.expired && wait > 0 && context.push.enter() {
                defer { context.push.leave() }
                page = try waitForEvents(page, principal: principal, scope: scope, limit: limit, deadline: requestContext.waitDeadline(seconds: wait))
            }
            if page.expired {
                return problem(Problem(.cursorExpired, status: 410, title: "Cursor expired",
                                       detail: "The events after this cursor are no longer kept; start again without `after`.",
                                       instance: requestContext.path), requestContext)
            }
            return json(200, Self.eventPage(page.events, next: page.next ?? after))
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// Waits for the feed to move past `page.next`, reading again at every wake-up and every
    /// second; while events are held back by transactions still running, sooner: after
    /// 20 ms, then twice as long each time nothing new is visible, up to a second. One long
    /// transaction anywhere in the cluster holds the feed back (`pg_snapshot_xmin`), so a
    /// fixed short pause would have every waiting reader read the database 50 times a
    /// second for as long as it runs. A wake-up (a new event) starts again at 20 ms.
    private func waitForEvents(_ empty: EventPage, principal: String, scope: ReadScope, limit: Int, deadline: Int) throws(StoreError) -> EventPage {
        var page = empty
        var seen = context.push.watch(nil)
        // A change may have come between the first read and the watch.
        var cursor = page.next
        page = try store.events(after: cursor, principal: principal, scope: scope, limit: limit)
        var recheck = HeldBackRecheck.firstMilliseconds
        while page.events.isEmpty && !page.expired && !context.push.isClosed && MonotonicClock.milliseconds() < deadline {
            cursor = page.next ?? cursor
            // Not every event notifies (only those a waiting read or a webhook needs), so look
            // again every second; events held back by transactions still running, sooner.
            let next = MonotonicClock.milliseconds() + (page.heldBack ? recheck : 1000)
            let before = seen
            seen = context.push.wait(for: nil, after: seen, until: min(deadline, next))
            recheck = seen != before ? HeldBackRecheck.firstMilliseconds
                : page.heldBack ? min(recheck * 2, HeldBackRecheck.lastMilliseconds) : recheck
            metrics.increment(Metrics.eventFeedRereads, [("held_back", page.heldBack ? "true" : "false")])
            page = try store.events(after: cursor, principal: principal, scope: scope, limit: limit)
        }
        if page.next == nil { page.next = cursor }
        return page
    }

    /// `{"data": [events…], "next": cursor or null}`.
    static func eventPage(_ events: [EventRecord], next: EventCursor?) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("data")
        writer.beginArray()
        for event in events { event.write(to: &writer) }
        writer.endArray()
        writer.member("next", next?.description)
        writer.endObject()
        return writer.bytes
    }
}

/// The first and the longest pause between reads of a waiting request while events are held back.
enum HeldBackRecheck {
    static let firstMilliseconds = 20
    static let lastMilliseconds = 1000
}
