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

    /// Waits for the feed to move past `page.next`, reading again at every wake-up, every
    /// second, and shortly when events are held back by transactions still running.
    private func waitForEvents(_ empty: EventPage, principal: String, scope: ReadScope, limit: Int, deadline: Int) throws(StoreError) -> EventPage {
        var page = empty
        var seen = context.push.watch(nil)
        // A change may have come between the first read and the watch.
        var cursor = page.next
        page = try store.events(after: cursor, principal: principal, scope: scope, limit: limit)
        while page.events.isEmpty && !page.expired && !context.push.isClosed && MonotonicClock.milliseconds() < deadline {
            cursor = page.next ?? cursor
            // Not every event notifies (only those a waiting read or a webhook needs), so look
            // again every second; events held back by transactions still running, shortly.
            let next = MonotonicClock.milliseconds() + (page.heldBack ? 20 : 1000)
            seen = context.push.wait(for: nil, after: seen, until: min(deadline, next))
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
