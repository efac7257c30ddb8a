// A tracing instance of our own that streams one device's rmap updates to subscribers.
//
// Design note. The session makes `instances/xfs-rmap-PID-N` (so the global buffer and
// anyone else's tracing are untouched), sets its clock to `mono` (so that the per-CPU
// buffers merge into the order the kernel made the changes: each AG's changes happen one
// at a time under its AGF lock, timestamped inside it), sizes its buffer, filters each
// event by the device (`dev == N`, the kernel's dev_t encoding) and enables the events of
// `RmapTraceDecoder`. A reader thread reads `trace_pipe`, decodes each line and hands the
// items, in order, to the hook registry's subscribers. `mark(_:)` writes a line to the
// instance's `trace_marker`: it arrives in the same stream at the point it was written,
// which is how a scanner learns which updates came before, during and after one of its
// reads. `finish()` writes a closing marker, waits until the reader has passed it, then
// checks the per-CPU statistics: any overrun or dropped event (or a "[LOST n EVENTS]"
// line) makes the stream incomplete, which the caller reports rather than give a verdict.
// The instance is removed by `finish()`, `cancel()` or deinit, and `removeStaleInstances`
// removes what a killed process left behind.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Subscribers to decoded rmap trace items (the live hooks). Each subscriber gets every
/// item, in stream order, on the session's reader thread; what it does with an update (apply
/// it, drop it, ask for a re-read) is its own decision, as with the kernel's
/// `xchk_iscan_want_live_update` filter.
public final class RmapHookRegistry: @unchecked Sendable {
    /// A subscriber's handle, for `unsubscribe`.
    public struct Handle: Hashable, Sendable { let id: Int }

    private let lock = ConditionLock()
    private var subscribers: [(Int, @Sendable (RmapTraceItem) -> Void)] = []
    private var nextID = 0

    /// An empty registry.
    public init() {}

    /// Adds `body`; it is called with each item from then on.
    @discardableResult
    public func subscribe(_ body: @escaping @Sendable (RmapTraceItem) -> Void) -> Handle {
        lock.withLock {
            nextID += 1
            subscribers.append((nextID, body))
            return Handle(id: nextID)
        }
    }

    /// Removes the subscriber `handle`.
    public func unsubscribe(_ handle: Handle) {
        lock.withLock { subscribers.removeAll { $0.0 == handle.id } }
    }

    /// Calls every subscriber with `item`.
    public func publish(_ item: RmapTraceItem) {
        let current = lock.withLock { subscribers }
        for (_, body) in current { body(item) }
    }
}

/// A running trace of one XFS device's rmap updates (see the design note above).
public final class RmapTraceSession: @unchecked Sendable {
    /// The registry whose subscribers receive the items.
    public let hooks: RmapHookRegistry
    /// The instance's directory, relative to the tracefs root.
    public let instance: String
    let tracefs: TraceFS
    private let lock = ConditionLock()
    private var decoder = RmapTraceDecoder()
    private var lostReasons: [String] = []
    private var failures: [String] = []
    private var itemsSeen = 0
    private var updatesSeen = 0
    private var markersSeen: Set<String> = []
    private var readerDone = false
    private var stopRequested = false
    private var readerStarted = false
    private var cancelDone = false
    private var readerHeld = false
    private var removed = false
    private var stream: Int32 = -1
    private var markerStream: Int32 = -1
    private let finished = ConditionLock()
    private static let counterLock = ConditionLock()
    nonisolated(unsafe) private static var counter = 0
    /// Sessions not yet cancelled (under `counterLock`), for `cancelAll()`.
    nonisolated(unsafe) private static var running: [ObjectIdentifier: RmapTraceSession] = [:]

    /// The kernel's dev_t encoding of a block device's `st_rdev` (major << 20 | minor), the
    /// value the tracepoints' `dev` field holds.
    public static func kernelDevice(_ rdev: UInt64) -> UInt64 {
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~UInt64(0xfff))
        let minor = (rdev & 0xff) | ((rdev >> 12) & ~UInt64(0xff))
        return major << 20 | minor
    }

    /// Starts tracing the rmap updates of the XFS on the device whose `st_rdev` (or, for a
    /// mounted filesystem, `st_dev`) is `device`, into `hooks`. `bufferKB` is the per-CPU
    /// ring buffer size.
    public init(device: UInt64, hooks: RmapHookRegistry, bufferKB: Int = 65536) throws {
        tracefs = try TraceFS.find()
        self.hooks = hooks
        let n = Self.counterLock.withLock { Self.counter += 1; return Self.counter }
        instance = "instances/xfs-rmap-\(getpid())-\(n)"
        for event in RmapTraceDecoder.allEvents where !tracefs.exists("events/xfs/\(event)/format") {
            throw LiveCheckError.unsupported("no tracepoint xfs:\(event)")
        }
        for event in RmapTraceDecoder.changeEvents {
            let format = try tracefs.read("events/xfs/\(event)/format")
            for field in ["dev", "agno", "owner", "offset", "flags"] where !format.contains(" \(field);") {
                throw LiveCheckError.unsupported("xfs:\(event) has no field \(field)")
            }
        }
        try tracefs.makeDirectory(instance)
        // Known to `cancelAll()` from the moment the instance exists (a Ctrl-C may come now).
        Self.counterLock.withLock { Self.running[ObjectIdentifier(self)] = self }
        do {
            try tracefs.write("\(instance)/trace_clock", "mono")
            try tracefs.write("\(instance)/buffer_size_kb", "\(bufferKB)")
            let dev = Self.kernelDevice(device)
            for event in RmapTraceDecoder.allEvents {
                try tracefs.write("\(instance)/events/xfs/\(event)/filter", "dev == \(dev)")
                try tracefs.write("\(instance)/events/xfs/\(event)/enable", "1")
            }
            try tracefs.write("\(instance)/tracing_on", "1")
            let marker = try tracefs.openForWriting("\(instance)/trace_marker")
            let fd: Int32
            do {
                fd = try tracefs.openStream("\(instance)/trace_pipe")
            } catch {
                tracefs.closeStream(marker)
                throw error
            }
            // A cancel (Ctrl-C) that came meanwhile found no reader to stop and no stream to
            // close: it is this init's to finish.
            let proceed = lock.withLock { () -> Bool in
                if removed { return false }
                stream = fd
                markerStream = marker
                readerStarted = true
                return true
            }
            if !proceed {
                tracefs.closeStream(marker)
                tracefs.closeStream(fd)
                try? tracefs.removeDirectory(instance)
                throw LiveCheckError.tracing(path: tracefs.root + "/" + instance, detail: "cancelled while starting")
            }
        } catch {
            cancel()
            throw error
        }
        do {
            try startThread(named: "xfs-rmap trace") { [self] in readLoop() }
        } catch {
            lock.withLock { readerStarted = false }
            cancel()
            throw error
        }
    }

    deinit { cancel() }

    /// Writes `text` (one line, no newline) to the instance's `trace_marker`.
    public func mark(_ text: String) throws {
        try lock.withLock {
            guard markerStream >= 0 else {
                throw LiveCheckError.tracing(path: tracefs.root + "/" + instance + "/trace_marker", detail: "the trace has ended")
            }
            try tracefs.write(to: markerStream, text, path: "\(instance)/trace_marker")
        }
    }

    /// Holds the reader back (`true`) or lets it go on: for tests of what a full ring
    /// buffer does.
    func holdReader(_ held: Bool) {
        lock.withLock { readerHeld = held }
    }

    /// Updates decoded so far, and how many came from intents (deferred) and direct calls.
    public var counts: (updates: Int, deferred: Int, direct: Int) {
        lock.withLock { (updatesSeen, decoder.deferredUpdates, decoder.directUpdates) }
    }

    /// Whether `text` is the marker that ends the stream.
    private static func isFinal(_ text: String) -> Bool {
        text.hasPrefix("xfs-rmap-live end ") && text.hasSuffix(" final")
    }

    private func readLoop() {
        var partial: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        defer {
            finished.lock()
            readerDone = true
            finished.broadcast()
            finished.unlock()
        }
        while true {
            let (held, stopping) = lock.withLock { (readerHeld, stopRequested) }
            // A cancelled trace is not read to its end: what is left in it has no reader.
            if stopping { return }
            if held {
                usleep(10_000)
                continue
            }
            do {
                guard let count = try tracefs.readChunk(stream, into: &chunk) else {
                    if lock.withLock({ stopRequested }) { return }
                    continue
                }
                if count == 0 { return }
                partial += chunk[..<count]
            } catch {
                lock.withLock { failures.append("\(error)") }
                return
            }
            // Decode every whole line of the chunk under one hold of the lock (nothing after
            // the final marker), then hand the items over in stream order.
            var start = 0
            var items: [RmapTraceItem] = []
            lock.withLock {
                while let newline = partial[start...].firstIndex(of: 0x0a) {
                    let item = decoder.decode(partial, start..<newline)
                    start = newline + 1
                    guard let item else { continue }
                    items.append(item)
                    switch item {
                    case .update: updatesSeen += 1
                    case let .lost(why): lostReasons.append(why)
                    case let .failure(why): failures.append(why)
                    case let .marker(text): if Self.isFinal(text) { return }
                    }
                }
            }
            for item in items {
                if case let .marker(text) = item, text.hasPrefix("xfs-rmap-live end ") {
                    finished.lock()
                    markersSeen.insert(text)
                    finished.broadcast()
                    finished.unlock()
                    if Self.isFinal(text) { return }
                }
                hooks.publish(item)
            }
            partial.removeFirst(start)
        }
    }

    /// Waits until every update the kernel made before this call has reached the
    /// subscribers (a marker written now has come through the stream).
    public func drain(timeout: Double = 60) throws {
        try waitForMarker("xfs-rmap-live end \(nextEndMarker())", timeout: timeout)
    }

    /// A number for an end marker, unique in the process.
    private func nextEndMarker() -> Int {
        Self.counterLock.withLock {
            Self.counter += 1
            return Self.counter
        }
    }

    private func waitForMarker(_ marker: String, timeout: Double) throws {
        try mark(marker)
        let deadline = MonotonicDeadline(secondsFromNow: timeout)
        finished.lock()
        defer { finished.unlock() }
        while !markersSeen.contains(marker) && !readerDone {
            if !finished.wait(until: deadline) {
                throw LiveCheckError.incompleteStream("the trace marker did not come through within \(Int(timeout)) s")
            }
        }
        if !markersSeen.contains(marker) {
            throw LiveCheckError.incompleteStream("the trace reader stopped: \(lock.withLock { failures.joined(separator: "; ") })")
        }
    }

    /// Ends the trace: waits for every update made before the call, stops the reader,
    /// removes the instance, and throws `incompleteStream` when events were lost (ring-buffer
    /// overruns, dropped events, a lost-events line) or the kernel reported a failed update.
    public func finish(timeout: Double = 60) throws {
        defer { cancel() }
        try waitForMarker("xfs-rmap-live end \(nextEndMarker()) final", timeout: timeout)
        var reasons = lock.withLock { lostReasons + failures }
        reasons += try overruns()
        if !reasons.isEmpty { throw LiveCheckError.incompleteStream(reasons.joined(separator: "; ")) }
    }

    /// Lost events by the per-CPU statistics ("overrun", "dropped events").
    func overruns() throws -> [String] {
        var found: [String] = []
        var cpu = 0
        while tracefs.exists("\(instance)/per_cpu/cpu\(cpu)/stats") {
            let stats = try tracefs.read("\(instance)/per_cpu/cpu\(cpu)/stats")
            for line in stats.split(separator: "\n") {
                let parts = line.split(separator: ":")
                guard parts.count == 2, ["overrun", "dropped events"].contains(parts[0]),
                      let value = Int(parts[1].drop { $0 == " " }), value > 0 else { continue }
                found.append("CPU \(cpu): \(parts[0]) \(value) (the ring buffer was full)")
            }
            cpu += 1
        }
        return found
    }

    /// Stops tracing and removes the instance (once; also on error paths and at deinit). A
    /// second caller (the Ctrl-C handler and the check's own clean-up, say) waits until
    /// the first has finished, so that neither returns with the instance still there.
    public func cancel() {
        let alreadyRemoved = lock.withLock { () -> Bool in
            defer { removed = true }
            return removed
        }
        guard !alreadyRemoved else {
            finished.lock()
            let deadline = MonotonicDeadline(secondsFromNow: 15)
            while !cancelDone { if !finished.wait(until: deadline) { break } }
            finished.unlock()
            return
        }
        defer {
            finished.lock()
            cancelDone = true
            finished.broadcast()
            finished.unlock()
        }
        _ = Self.counterLock.withLock { Self.running.removeValue(forKey: ObjectIdentifier(self)) }
        // No marker is written from now on; an open trace_marker would keep the instance busy.
        let marker = lock.withLock { () -> Int32 in
            defer { markerStream = -1 }
            return markerStream
        }
        if marker >= 0 { tracefs.closeStream(marker) }
        try? tracefs.write("\(instance)/tracing_on", "0")
        for event in RmapTraceDecoder.allEvents {
            try? tracefs.write("\(instance)/events/xfs/\(event)/enable", "0")
        }
        // The reader polls: it sees the request within its poll interval.
        lock.withLock { stopRequested = true }
        let started = lock.withLock { readerStarted }
        finished.lock()
        let deadline = MonotonicDeadline(secondsFromNow: 10)
        while started && !readerDone { if !finished.wait(until: deadline) { break } }
        let stopped = !started || readerDone
        finished.unlock()
        // A reader that did not stop keeps its descriptor (closing it under a read would
        // hand the number to someone else); the instance then cannot be removed either.
        guard stopped else { return }
        let fd = lock.withLock { stream }
        if fd >= 0 { tracefs.closeStream(fd) }
        try? tracefs.removeDirectory(instance)
    }

    /// Cancels every session of this process (for Ctrl-C): each removes its instance.
    public static func cancelAll() {
        let sessions = counterLock.withLock { Array(running.values) }
        for session in sessions { session.cancel() }
    }

    /// Disables and removes the instances process `pid` made (for a signal handler: the
    /// reader threads are left to the process's exit); returns their names.
    @discardableResult
    public static func removeInstances(ofProcess pid: Int32) -> [String] {
        guard let tracefs = try? TraceFS.find(),
              let names = directoryEntries(tracefs.root + "/instances") else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix("xfs-rmap-\(pid)-") {
            try? tracefs.write("instances/\(name)/tracing_on", "0")
            for event in RmapTraceDecoder.allEvents {
                try? tracefs.write("instances/\(name)/events/xfs/\(event)/enable", "0")
            }
            // An open trace_pipe keeps the instance busy; retry while the reader lets go.
            for _ in 0..<20 {
                if (try? tracefs.removeDirectory("instances/\(name)")) != nil { removed.append(name); break }
                usleep(50_000)
            }
        }
        return removed
    }

    /// Removes instances left by processes that no longer run (killed before they could
    /// clean up); returns their names.
    @discardableResult
    public static func removeStaleInstances() -> [String] {
        guard let tracefs = try? TraceFS.find(),
              let names = directoryEntries(tracefs.root + "/instances") else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix("xfs-rmap-") {
            let parts = name.split(separator: "-")
            guard parts.count == 4, let pid = Int32(parts[2]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            if (try? tracefs.removeDirectory("instances/\(name)")) != nil { removed.append(name) }
        }
        return removed
    }
}
