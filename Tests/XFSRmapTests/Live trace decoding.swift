import Foundation
import Testing
import XFSFormat
import XFSTestSupport
@testable import XFSRmap

// The trace decoder on lines this kernel printed (captured from trace_pipe during the
// experiment that chose the event set), and the session's lost-event detection against the
// real ring buffer.

/// Lines of `trace_pipe` as the kernel (6.18) printed them: a fallocate, a write into it
/// (convert), a reflink (map_shared), a CoW staging allocation (alloc), an unmap_shared, and
/// a direct xfs_rmap_map of AG metadata (no intent before it).
private let captured = """
    kworker/u8:6-9559    [001] ..... 11038.403141: xfs_rmap_deferred: dev 7:0 op map agno 0x0 gbno 0x188 owner 0x962 data fileoff 0x0 fsbcount 0xa0 state 1
    kworker/u8:6-9559    [001] ..... 11038.403174: xfs_rmap_map: dev 7:0 agno 0x0 gbno 0x188 fsbcount 0xa0 owner 0x962 fileoff 0x0 flags 0x4
    kworker/1:25-9455    [001] ..... 11038.403884: xfs_rmap_deferred: dev 7:0 op cvt agno 0x0 gbno 0x188 owner 0x962 data fileoff 0x0 fsbcount 0xa0 state 0
    kworker/1:25-9455    [001] ..... 11038.403889: xfs_rmap_convert: dev 7:0 agno 0x0 gbno 0x188 fsbcount 0xa0 owner 0x962 fileoff 0x0 flags 0x4
              cp-21059   [001] ..... 11041.092090: xfs_rmap_deferred: dev 7:0 op map_shared agno 0x0 gbno 0x188 owner 0x965 data fileoff 0x0 fsbcount 0xa0 state 0
              cp-21059   [001] ..... 11041.092108: xfs_rmap_map: dev 7:0 agno 0x0 gbno 0x188 fsbcount 0xa0 owner 0x965 fileoff 0x0 flags 0x0
    kworker/u8:2-21009   [001] ..... 11041.124177: xfs_rmap_deferred: dev 7:0 op alloc agno 0x0 gbno 0x328 owner 0xfffffffffffffff7 data fileoff 0x0 fsbcount 0x20 state 0
    kworker/u8:2-21009   [001] ..... 11041.124199: xfs_rmap_map: dev 7:0 agno 0x0 gbno 0x328 fsbcount 0x20 owner 0xfffffffffffffff7 fileoff 0x0 flags 0x0
       fallocate-21066   [001] ..... 11041.265289: xfs_rmap_deferred: dev 7:0 op unmap_shared agno 0x0 gbno 0x18a owner 0x962 data fileoff 0x2 fsbcount 0x2 state 0
       fallocate-21066   [001] .N... 11041.265314: xfs_rmap_unmap: dev 7:0 agno 0x0 gbno 0x18a fsbcount 0x2 owner 0x962 fileoff 0x2 flags 0x0
           <...>-30221   [000] ...1. 11701.241363: tracing_mark_write: xfs-rmap-live scan-begin 7
    kworker/0:1-77       [000] ..... 11702.000001: xfs_rmap_map: dev 7:0 agno 0x2 gbno 0x10 fsbcount 0x1 owner 0x4f2 fileoff 0x0 flags 0x2
    kworker/0:1-77       [000] ..... 11702.000002: xfs_rmap_map: dev 7:0 agno 0x1 gbno 0x2a fsbcount 0x3 owner 0x4f2 fileoff 0x9 flags 0x1
    CPU:1 [LOST 12 EVENTS]
    kworker/0:1-77       [000] ..... 11702.000003: xfs_rmap_unmap_error: dev 7:0 agno 0x1 error -117 ret_ip xfs_rmap_finish_one+0x1aa
    """

@Suite("Live: decoding the rmap trace")
struct RmapTraceDecoderTests {
    @Test("captured lines: each change paired with its intent (plain or shared), markers, lost events, errors")
    func capturedLines() {
        var decoder = RmapTraceDecoder()
        let items = captured.split(separator: "\n").compactMap { decoder.decode($0) }
        let cow = RmapOwner.cow
        #expect(items == [
            .update(RmapUpdate(.map, agno: 0, RmapRecord(startBlock: 0x188, blockCount: 0xa0, owner: 0x962, isUnwritten: true))),
            .update(RmapUpdate(.convert, agno: 0, RmapRecord(startBlock: 0x188, blockCount: 0xa0, owner: 0x962, isUnwritten: true))),
            .update(RmapUpdate(.mapShared, agno: 0, RmapRecord(startBlock: 0x188, blockCount: 0xa0, owner: 0x965))),
            .update(RmapUpdate(.map, agno: 0, RmapRecord(startBlock: 0x328, blockCount: 0x20, owner: cow))),
            .update(RmapUpdate(.unmapShared, agno: 0, RmapRecord(startBlock: 0x18a, blockCount: 2, owner: 0x962, offset: 2))),
            .marker("xfs-rmap-live scan-begin 7"),
            .update(RmapUpdate(.map, agno: 2, RmapRecord(startBlock: 0x10, blockCount: 1, owner: 0x4f2, isBmbtBlock: true))),
            .update(RmapUpdate(.map, agno: 1, RmapRecord(startBlock: 0x2a, blockCount: 3, owner: 0x4f2, offset: 9, isAttrFork: true))),
            .lost("CPU:1 [LOST 12 EVENTS]"),
            .failure("the kernel reported a failed rmap update: "
                + "kworker/0:1-77       [000] ..... 11702.000003: xfs_rmap_unmap_error: dev 7:0 agno 0x1 error -117 ret_ip xfs_rmap_finish_one+0x1aa"),
        ])
        #expect(decoder.deferredUpdates == 5 && decoder.directUpdates == 2)
    }

    @Test("6.9's field names (agbno, len) decode the same; an intent of another range is not paired")
    func olderNames() {
        var decoder = RmapTraceDecoder()
        let lines = [
            "  kworker/0:1-77 [000] ..... 1.000001: xfs_rmap_deferred: dev 7:0 op unmap_shared agno 0x1 agbno 0x50 owner 0x80 data fileoff 0x0 fsbcount 0x4 state 0",
            "  kworker/0:1-77 [000] ..... 1.000002: xfs_rmap_unmap: dev 7:0 agno 0x1 agbno 0x50 len 0x4 owner 0x80 offset 0x0 flags 0x0",
            "  kworker/0:1-77 [000] ..... 1.000003: xfs_rmap_deferred: dev 7:0 op cvt_shared agno 0x1 agbno 0x60 owner 0x80 data fileoff 0x0 fsbcount 0x4 state 0",
            "  kworker/0:1-77 [000] ..... 1.000004: xfs_rmap_convert: dev 7:0 agno 0x1 agbno 0x70 len 0x4 owner 0x80 offset 0x10 flags 0x4",
        ]
        let items = lines.compactMap { decoder.decode($0[...]) }
        #expect(items == [
            .update(RmapUpdate(.unmapShared, agno: 1, RmapRecord(startBlock: 0x50, blockCount: 4, owner: 0x80))),
            .update(RmapUpdate(.convert, agno: 1, RmapRecord(startBlock: 0x70, blockCount: 4, owner: 0x80, offset: 0x10, isUnwritten: true))),
        ])
    }

    @Test("lines it cannot read are failures, not guesses; other events and blank lines are skipped")
    func unreadable() {
        var decoder = RmapTraceDecoder()
        #expect(decoder.decode("a-1 [000] ..... 1.0: xfs_rmap_map: dev 7:0 agno 0x0 owner 0x80 flags 0x0") ==
            .failure("unreadable xfs_rmap_map event: a-1 [000] ..... 1.0: xfs_rmap_map: dev 7:0 agno 0x0 owner 0x80 flags 0x0"))
        #expect(decoder.decode("a-1 [000] ..... 1.0: xfs_rmap_map: dev 7:0 rtgno 0x0 gbno 0x5 fsbcount 0x1 owner 0x80 fileoff 0x0 flags 0x0")
            == .failure("realtime rmap update: a-1 [000] ..... 1.0: xfs_rmap_map: dev 7:0 rtgno 0x0 gbno 0x5 fsbcount 0x1 owner 0x80 fileoff 0x0 flags 0x0"))
        #expect(decoder.decode("a-1 [000] ..... 1.0: xfs_bmap_free: dev 7:0 whatever") == nil)
        #expect(decoder.decode("") == nil)
    }
}

@Suite("Live: lost events", .serialized, .enabled(if: liveUnavailableReason == nil, "\(liveUnavailableReason ?? "")"))
struct RmapTraceLossTests {
    @Test("a ring buffer that overflows while the reader is held up makes finish() throw: no verdict on a partial stream")
    func overrunDetected() throws {
        let path = try Fixtures.writableCopy("empty-4k")
        defer { unlink(path) }
        var session: RmapTraceSession?
        defer { session?.cancel() }
        let hooks = RmapHookRegistry()
        let mount = try LoopMount(image: path) { device in
            // One page per CPU, and the reader held up: the kernel must overwrite events.
            session = try RmapTraceSession(device: try TraceFS.deviceNumber(of: device), hooks: hooks, bufferKB: 4)
            session?.holdReader(true)
        }
        defer { try? mount.unmount() }
        try mount.shell("python3 '\(writersScript)' \"$M\" --seed 3 --writers 2 --ops 400 > /dev/null")
        try mount.unmount()
        let running = try #require(session)
        running.holdReader(false)
        do {
            try running.finish()
            Issue.record("finish() reported a complete stream from a one-page buffer that was not read")
        } catch let LiveCheckError.incompleteStream(why) {
            #expect(why.contains("overrun") || why.contains("LOST") || why.contains("dropped"), "\(why)")
        }
    }
}
