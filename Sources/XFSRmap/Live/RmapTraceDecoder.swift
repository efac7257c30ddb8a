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
// 6.9 (agbno, len) and of later kernels (gbno, fsbcount) are accepted. Lines are read as
// bytes, never as `String`s (a String only for a marker's text and an error's line): under
// busy writers the trace carries thousands of lines a second, and decoding them as
// Unicode text had made the reader use most of the check's CPU time. `RmapTraceSession`
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
        var isShared: Bool
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
        let bytes = Array(line.utf8)
        return decode(bytes, 0..<bytes.count)
    }

    /// The item the line at `range` of `bytes` (without its newline) carries, or nil for a
    /// line of no interest.
    public mutating func decode(_ bytes: [UInt8], _ range: Range<Int>) -> RmapTraceItem? {
        lines += 1
        let line = TraceLine(bytes: bytes, range: range)
        if line.starts(with: TraceLine.cpuPrefix), line.contains(TraceLine.lost) {
            return .lost(line.text(range))
        }
        guard let (pid, name, fieldText) = line.split() else { return nil }
        let event = TraceLine.Event(line, name)
        switch event {
        case .none:
            return nil
        case .marker:
            return .marker(line.trimmedText(fieldText))
        case .error:
            return .failure("the kernel reported a failed rmap update: \(line.text(range))")
        case .deferred:
            let values = line.fields(fieldText)
            guard values.sharedOperation != nil, let agno = values.agno, let bno = values.block, let owner = values.owner else {
                return .failure("unreadable xfs_rmap_deferred event: \(line.text(range))")
            }
            if values.realtime { return .failure("realtime rmap update: \(line.text(range))") }
            pending[pid] = Intent(isShared: values.sharedOperation == true, agno: UInt32(truncatingIfNeeded: agno),
                                  startBlock: UInt32(truncatingIfNeeded: bno), owner: owner)
            return nil
        case .map, .unmap, .convert:
            let values = line.fields(fieldText)
            if values.realtime { return .failure("realtime rmap update: \(line.text(range))") }
            guard let agno = values.agno, let bno = values.block, let length = values.length, let owner = values.owner,
                  let offset = values.offset, let flags = values.flags,
                  length > 0, length <= UInt64(UInt32.max), bno <= UInt64(UInt32.max) else {
                return .failure("unreadable \(line.text(name)) event: \(line.text(range))")
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
                shared = intent.isShared
                deferredUpdates += 1
            } else {
                directUpdates += 1
            }
            let operation: RmapUpdate.Operation = switch event {
            case .map: shared ? .mapShared : .map
            case .unmap: shared ? .unmapShared : .unmap
            default: shared ? .convertShared : .convert
            }
            return .update(RmapUpdate(operation, agno: UInt32(truncatingIfNeeded: agno), record))
        }
    }
}

/// One `trace_pipe` line, read in place in the reader's bytes: "comm-PID [CPU] FLAGS
/// TIMESTAMP: EVENT: FIELDS".
struct TraceLine {
    let bytes: [UInt8]
    let range: Range<Int>

    static let cpuPrefix = Array("CPU:".utf8)
    static let lost = Array("LOST".utf8)

    /// The events the decoder tells apart.
    enum Event {
        case deferred, map, unmap, convert, error, marker, none

        /// The decoder's event lists, as bytes (`changeEvents` in the order map, unmap,
        /// convert), and the marker's event.
        static let names: [(name: [UInt8], event: Event)] = (
            zip(RmapTraceDecoder.intentEvents + RmapTraceDecoder.changeEvents, [Event.deferred, .map, .unmap, .convert])
                + RmapTraceDecoder.errorEvents.map { ($0, Event.error) } + [("tracing_mark_write", Event.marker)]
        ).map { (Array($0.0.utf8), $0.1) }

        init(_ line: TraceLine, _ name: Range<Int>) {
            self = Self.names.first { line.equals(name, $0.name) }?.event ?? .none
        }
    }

    /// The fields the decoder reads, by name (both kernels' names).
    struct Fields {
        /// From `op`: whether the intent is a shared form (nil: no `op`).
        var sharedOperation: Bool?
        var agno: UInt64?, block: UInt64?, length: UInt64?, owner: UInt64?, offset: UInt64?, flags: UInt64?
        /// Whether the event names a realtime group (`rtgno`).
        var realtime = false
    }

    /// The keys whose next word is their value; other words (the fork: data, attr, cow)
    /// stand alone.
    enum Key: CaseIterable {
        case dev, op, agno, rtgno, gbno, agbno, owner, fileoff, offset, fsbcount, len, flags, state

        static let spellings: [(bytes: [UInt8], key: Key)] = allCases.map { (Array("\($0)".utf8), $0) }

        init?(_ line: TraceLine, _ word: Range<Int>) {
            guard let found = Self.spellings.first(where: { line.equals(word, $0.bytes) }) else { return nil }
            self = found.key
        }
    }

    func starts(with prefix: [UInt8]) -> Bool {
        range.count >= prefix.count && equals(range.lowerBound..<range.lowerBound + prefix.count, prefix)
    }

    func contains(_ needle: [UInt8]) -> Bool { find(needle, in: range) != nil }

    func equals(_ part: Range<Int>, _ other: [UInt8]) -> Bool {
        guard part.count == other.count else { return false }
        var j = 0
        for i in part {
            if bytes[i] != other[j] { return false }
            j += 1
        }
        return true
    }

    /// Where `needle` first occurs in `part`.
    func find(_ needle: [UInt8], in part: Range<Int>) -> Int? {
        guard let first = needle.first, part.count >= needle.count else { return nil }
        var i = part.lowerBound
        while i + needle.count <= part.upperBound {
            if bytes[i] == first && equals(i..<i + needle.count, needle) { return i }
            i += 1
        }
        return nil
    }

    static let bracket = Array(" [".utf8)
    static let colonSpace = Array(": ".utf8)

    /// The task's pid, the event name and the fields after it.
    func split() -> (pid: Int32, name: Range<Int>, fields: Range<Int>)? {
        guard let open = find(Self.bracket, in: range) else { return nil }
        var headEnd = open
        while headEnd > range.lowerBound && bytes[headEnd - 1] == 0x20 { headEnd -= 1 }
        var dash = headEnd - 1
        while dash >= range.lowerBound && bytes[dash] != 0x2D { dash -= 1 }
        guard dash >= range.lowerBound, dash + 1 < headEnd, let pid = number(dash + 1..<headEnd, radix: 10),
              pid <= UInt64(Int32.max) else { return nil }
        // The timestamp ends with ": "; the event name follows, ending with ": " too.
        guard let stamp = find(Self.colonSpace, in: open + 2..<range.upperBound) else { return nil }
        let nameStart = stamp + 2
        guard let nameEnd = find(Self.colonSpace, in: nameStart..<range.upperBound) else {
            var end = range.upperBound
            if end > nameStart && bytes[end - 1] == 0x3A { end -= 1 }
            return (Int32(pid), nameStart..<end, end..<end)
        }
        return (Int32(pid), nameStart..<nameEnd, nameEnd + 2..<range.upperBound)
    }

    /// The named values of an event's fields.
    func fields(_ part: Range<Int>) -> Fields {
        var result = Fields()
        var i = part.lowerBound
        var pendingKey: Key?
        while i < part.upperBound {
            if bytes[i] == 0x20 {
                i += 1
                continue
            }
            var end = i
            while end < part.upperBound && bytes[end] != 0x20 { end += 1 }
            let word = i..<end
            i = end
            if let key = pendingKey {
                pendingKey = nil
                switch key {
                case .op: result.sharedOperation = word.count >= 7 && equals(word.upperBound - 7..<word.upperBound, Self.sharedSuffix)
                case .agno: result.agno = value(word)
                case .rtgno: result.realtime = true
                case .gbno, .agbno: result.block = value(word)
                case .owner: result.owner = value(word)
                case .fileoff, .offset: result.offset = value(word)
                case .fsbcount, .len: result.length = value(word)
                case .flags: result.flags = value(word)
                case .dev, .state: break
                }
            } else if let key = Key(self, word) {
                pendingKey = key
                if key == .rtgno { result.realtime = true }
            }
        }
        return result
    }

    static let sharedSuffix = Array("_shared".utf8)

    /// A field's number: hexadecimal after "0x", else decimal.
    func value(_ word: Range<Int>) -> UInt64? {
        if word.count > 2 && bytes[word.lowerBound] == 0x30 && bytes[word.lowerBound + 1] == 0x78 {
            return number(word.lowerBound + 2..<word.upperBound, radix: 16)
        }
        return number(word, radix: 10)
    }

    /// The unsigned number the digits in `part` spell; nil for no digits, another
    /// character or an overflow.
    func number(_ part: Range<Int>, radix: UInt64) -> UInt64? {
        guard !part.isEmpty else { return nil }
        var result: UInt64 = 0
        for i in part {
            let c = bytes[i]
            let digit: UInt64
            switch c {
            case 0x30...0x39: digit = UInt64(c - 0x30)
            case 0x61...0x66 where radix == 16: digit = UInt64(c - 0x61 + 10)
            case 0x41...0x46 where radix == 16: digit = UInt64(c - 0x41 + 10)
            default: return nil
            }
            let (scaled, o1) = result.multipliedReportingOverflow(by: radix)
            let (sum, o2) = scaled.addingReportingOverflow(digit)
            if o1 || o2 { return nil }
            result = sum
        }
        return result
    }

    func text(_ part: Range<Int>) -> String { String(decoding: bytes[part], as: UTF8.self) }

    /// The text without leading and trailing spaces and newlines.
    func trimmedText(_ part: Range<Int>) -> String {
        var lower = part.lowerBound, upper = part.upperBound
        while lower < upper && (bytes[lower] == 0x20 || bytes[lower] == 0x0A) { lower += 1 }
        while upper > lower && (bytes[upper - 1] == 0x20 || bytes[upper - 1] == 0x0A) { upper -= 1 }
        return text(lower..<upper)
    }
}
