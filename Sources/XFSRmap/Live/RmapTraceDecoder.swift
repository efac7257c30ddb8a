// Decoding the kernel's rmap tracepoints (the text of `trace_pipe`) into rmap updates.
//
// Design note. Which events form a complete stream was found by experiment (README,
// "check --online"): every change to an rmapbt goes through one of three functions, each
// with a tracepoint, `xfs_rmap_map`, `xfs_rmap_unmap` and `xfs_rmap_convert`, emitted with
// the AGF locked, before the change, carrying the AG, AG block, length, owner, file offset
// and the flags (attr fork 0x1, bmbt block 0x2, unwritten 0x4; for a conversion the state
// before it). They fire for inode mappings (deferred rmap intents), for CoW staging extents
// and for AG metadata (`xfs_rmap_alloc` / `xfs_rmap_free`: AGFL refills, inode chunks, inobt
// and refcountbt blocks, bmbt blocks). They do not say whether the shared form ran; the
// intent's tracepoint `xfs_rmap_deferred`, which the same task emits just before, does
// (op map_shared / unmap_shared / cvt_shared). So the decoder keeps each task's last
// deferred intent and pairs it with the task's next low-level event of the same range;
// a low-level event without one is a direct `xfs_rmap_alloc` / `xfs_rmap_free` (the plain
// form). The `_error` events mean the kernel's update failed (the filesystem shuts down).
//
// Fields are found by name, not position ("agno 0x1 gbno 0x2a ..."), and both the names of
// 6.9 (agbno, len) and of later kernels (gbno, fsbcount) are accepted. `RmapTraceSession`
// checks the events' `format` files before tracing, so a kernel whose events lack a field
// is refused up front rather than misread.

import XFSFormat

/// One decoded line of the trace.
public enum RmapTraceItem: Sendable, Equatable {
    /// An rmapbt change, in the order the kernel made it.
    case update(RmapUpdate)
    /// A line written to the instance's `trace_marker` (its text).
    case marker(String)
    /// Events were lost (the kernel's "[LOST n EVENTS]" line).
    case lost(String)
    /// The kernel reported a failed rmap update, or an update this check cannot follow
    /// (a realtime group): the trees can no longer be trusted.
    case failure(String)
}

/// Turns `trace_pipe` lines into rmap updates (see the design note above).
public struct RmapTraceDecoder: Sendable {
    /// The low-level events (the complete set of rmapbt changes).
    public static let changeEvents = ["xfs_rmap_map", "xfs_rmap_unmap", "xfs_rmap_convert"]
    /// The events that say which form (plain or shared) a change took.
    public static let intentEvents = ["xfs_rmap_deferred"]
    /// The events that report a failed change.
    public static let errorEvents = ["xfs_rmap_map_error", "xfs_rmap_unmap_error", "xfs_rmap_convert_error"]
    /// Every event the stream needs.
    public static var allEvents: [String] { intentEvents + changeEvents + errorEvents }

    /// What a task's last intent said, waiting for its low-level event.
    struct Intent: Sendable {
        var operation: String
        var agno: UInt32
        var startBlock: UInt32
        var owner: UInt64
    }

    /// Each task's intent not yet paired.
    var pending: [Int32: Intent] = [:]
    /// Lines decoded, and lines that named none of the events (skipped).
    public private(set) var lines = 0
    /// Updates decoded from intents and from direct calls.
    public private(set) var deferredUpdates = 0, directUpdates = 0

    /// A decoder with no pending intents.
    public init() {}

    /// The item `line` carries, or nil for a line of no interest (another event, blank).
    public mutating func decode(_ line: Substring) -> RmapTraceItem? {
        lines += 1
        if line.hasPrefix("CPU:"), line.contains("LOST") {
            return .lost(String(line))
        }
        guard let (pid, event, fields) = Self.split(line) else { return nil }
        if event == "tracing_mark_write" {
            return .marker(fields.trimmingCharacters())
        }
        let values = Self.fields(fields)
        switch event {
        case "xfs_rmap_deferred":
            guard let op = values.words["op"], let agno = values.number("agno"),
                  let bno = values.number("gbno") ?? values.number("agbno"), let owner = values.number("owner") else {
                return .failure("unreadable xfs_rmap_deferred event: \(line)")
            }
            if values.words["rtgno"] != nil { return .failure("realtime rmap update: \(line)") }
            pending[pid] = Intent(operation: String(op), agno: UInt32(truncatingIfNeeded: agno),
                                  startBlock: UInt32(truncatingIfNeeded: bno), owner: owner)
            return nil
        case "xfs_rmap_map", "xfs_rmap_unmap", "xfs_rmap_convert":
            if values.words["rtgno"] != nil { return .failure("realtime rmap update: \(line)") }
            guard let agno = values.number("agno"), let bno = values.number("gbno") ?? values.number("agbno"),
                  let length = values.number("fsbcount") ?? values.number("len"), let owner = values.number("owner"),
                  let offset = values.number("fileoff") ?? values.number("offset"), let flags = values.number("flags"),
                  length > 0, length <= UInt64(UInt32.max), bno <= UInt64(UInt32.max) else {
                return .failure("unreadable \(event) event: \(line)")
            }
            let special = RmapOwner.isSpecial(owner)
            let bmbt = flags & 0x2 != 0
            let record = RmapRecord(startBlock: UInt32(bno), blockCount: UInt32(length), owner: owner,
                                    offset: special || bmbt ? 0 : offset, isAttrFork: flags & 0x1 != 0,
                                    isBmbtBlock: bmbt, isUnwritten: flags & 0x4 != 0)
            var shared = false
            if let intent = pending[pid], intent.agno == UInt32(truncatingIfNeeded: agno),
               intent.startBlock == record.startBlock, intent.owner == owner {
                pending[pid] = nil
                shared = intent.operation.hasSuffix("_shared")
                deferredUpdates += 1
            } else {
                directUpdates += 1
            }
            let operation: RmapUpdate.Operation = switch event {
            case "xfs_rmap_map": shared ? .mapShared : .map
            case "xfs_rmap_unmap": shared ? .unmapShared : .unmap
            default: shared ? .convertShared : .convert
            }
            return .update(RmapUpdate(operation, agno: UInt32(truncatingIfNeeded: agno), record))
        case "xfs_rmap_map_error", "xfs_rmap_unmap_error", "xfs_rmap_convert_error":
            return .failure("the kernel reported a failed rmap update: \(line)")
        default:
            return nil
        }
    }

    /// The task's pid, the event name and the text after it, of a `trace_pipe` line
    /// ("comm-PID [CPU] FLAGS TIMESTAMP: EVENT: FIELDS").
    static func split(_ line: Substring) -> (Int32, Substring, Substring)? {
        guard let bracket = line.firstRange(of: " [") else { return nil }
        var head = line[..<bracket.lowerBound]
        while head.last == " " { head = head.dropLast() }
        guard let dash = head.lastIndex(of: "-"), let pid = Int32(head[head.index(after: dash)...]) else { return nil }
        let rest = line[bracket.upperBound...]
        // The timestamp ends with ": "; the event name follows, ending with ": " too.
        guard let stamp = rest.firstRange(of: ": ") else { return nil }
        let afterStamp = rest[stamp.upperBound...]
        guard let nameEnd = afterStamp.firstRange(of: ": ") else {
            return (pid, afterStamp.hasSuffix(":") ? afterStamp.dropLast() : afterStamp, "")
        }
        return (pid, afterStamp[..<nameEnd.lowerBound], afterStamp[nameEnd.upperBound...])
    }

    /// Named values of an event's text: "key value" pairs, and the bare words between them.
    struct Fields {
        var words: [Substring: Substring] = [:]
        func number(_ key: Substring) -> UInt64? {
            guard let text = words[key] else { return nil }
            return text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        }
    }

    /// The keys whose next word is their value; other words (the fork: data, attr, cow)
    /// stand alone.
    static let keys: Set<Substring> = ["dev", "op", "agno", "rtgno", "gbno", "agbno", "owner", "fileoff", "offset",
                                       "fsbcount", "len", "flags", "state"]

    static func fields(_ text: Substring) -> Fields {
        var result = Fields()
        var words = text.split(separator: " ", omittingEmptySubsequences: true)[...]
        while let word = words.popFirst() {
            if keys.contains(word), let value = words.popFirst() {
                result.words[word] = value
            } else {
                result.words[word] = ""
            }
        }
        return result
    }
}

extension Substring {
    /// The text without leading and trailing spaces and newlines.
    func trimmingCharacters() -> String {
        var s = self[...]
        while let c = s.first, c == " " || c == "\n" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\n" { s = s.dropLast() }
        return String(s)
    }
}
