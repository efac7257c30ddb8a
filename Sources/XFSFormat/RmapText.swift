/// The rmap record text format shared by `scan`, `dump` and the corpus `.rmap.tsv` files:
/// one header line, then one tab-separated line per record, ordered by AG then key order:
///
///     agno  startblock  blockcount  owner  offset  unwritten  attrfork  bmbtblock
///
/// Special owners are printed negative as xfs_db does (−3 FS … −9 COW); flags are 0 or 1.
/// Every line, the header included, ends with "\n".
public enum RmapText {
    /// The header line, without its newline.
    public static let header = "agno\tstartblock\tblockcount\towner\toffset\tunwritten\tattrfork\tbmbtblock"

    /// One record line, without its newline.
    public static func line(agno: UInt32, _ r: RmapRecord) -> String {
        let owner = RmapOwner.isSpecial(r.owner) ? String(RmapOwner.signedValue(r.owner)) : String(r.owner)
        return "\(agno)\t\(r.startBlock)\t\(r.blockCount)\t\(owner)\t\(r.offset)\t\(r.isUnwritten ? 1 : 0)\t\(r.isAttrFork ? 1 : 0)\t\(r.isBmbtBlock ? 1 : 0)"
    }

    /// A record for messages, its fields labelled: "[start 5626, len 2, owner 2641, offset 777]",
    /// special owners by name ("owner AG"), the set flags after the offset ("unwritten",
    /// "attr", "bmbt").
    public static func describe(_ r: RmapRecord) -> String {
        var fields = ["start \(r.startBlock)", "len \(r.blockCount)", "owner \(RmapOwner.name(r.owner))", "offset \(r.offset)"]
        if r.isUnwritten { fields.append("unwritten") }
        if r.isAttrFork { fields.append("attr") }
        if r.isBmbtBlock { fields.append("bmbt") }
        return "[" + fields.joined(separator: ", ") + "]"
    }

    /// A whole document: the header and every record, each line ending in "\n".
    public static func format<S: Sequence>(_ rows: S) -> String where S.Element == (agno: UInt32, record: RmapRecord) {
        var out = header + "\n"
        for row in rows {
            out += line(agno: row.agno, row.record)
            out += "\n"
        }
        return out
    }

    /// Parses one record line (`lineNumber` is used in errors only).
    public static func parse(line: Substring, lineNumber: Int = 0) throws(XFSFormatError) -> (agno: UInt32, record: RmapRecord) {
        let location = "rmap text line \(lineNumber)"
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 8 else { throw XFSFormatError(.corrupt, location, "expected 8 tab-separated fields, found \(fields.count)") }
        func number<T: FixedWidthInteger>(_ i: Int, _ name: String, as: T.Type) throws(XFSFormatError) -> T {
            guard let v = T(fields[i]) else { throw XFSFormatError(.corrupt, location, "bad \(name) \"\(fields[i])\"") }
            return v
        }
        func flag(_ i: Int, _ name: String) throws(XFSFormatError) -> Bool {
            switch fields[i] {
            case "0": return false
            case "1": return true
            default: throw XFSFormatError(.corrupt, location, "bad \(name) flag \"\(fields[i])\"")
            }
        }
        let owner: UInt64
        if fields[3].hasPrefix("-") {
            owner = UInt64(bitPattern: try number(3, "owner", as: Int64.self))
        } else {
            owner = try number(3, "owner", as: UInt64.self)
        }
        let offset = try number(4, "offset", as: UInt64.self)
        guard offset <= RmapRecord.offsetMask else { throw XFSFormatError(.corrupt, location, "offset \(offset) exceeds 54 bits") }
        let record = RmapRecord(startBlock: try number(1, "startblock", as: UInt32.self),
                                blockCount: try number(2, "blockcount", as: UInt32.self), owner: owner, offset: offset,
                                isAttrFork: try flag(6, "attrfork"), isBmbtBlock: try flag(7, "bmbtblock"),
                                isUnwritten: try flag(5, "unwritten"))
        return (try number(0, "agno", as: UInt32.self), record)
    }

    /// Parses a whole document: the header line, then records. Empty trailing lines are ignored.
    public static func parse(document text: String) throws(XFSFormatError) -> [(agno: UInt32, record: RmapRecord)] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = lines.first, first == header else {
            throw XFSFormatError(.corrupt, "rmap text line 1", "missing header \"\(header)\"")
        }
        var rows: [(agno: UInt32, record: RmapRecord)] = []
        rows.reserveCapacity(lines.count)
        for (i, l) in lines.enumerated().dropFirst() where !l.isEmpty {
            rows.append(try parse(line: l, lineNumber: i + 1))
        }
        return rows
    }
}

extension RmapText {
    /// Appends `line(agno:_:)` and its newline to `out` as UTF-8, without building any
    /// `String`: the dump of a million records spends its time here.
    public static func appendLine(agno: UInt32, _ r: RmapRecord, to out: inout [UInt8]) {
        let tab = UInt8(ascii: "\t")
        appendDecimal(UInt64(agno), to: &out)
        out.append(tab)
        appendDecimal(UInt64(r.startBlock), to: &out)
        out.append(tab)
        appendDecimal(UInt64(r.blockCount), to: &out)
        out.append(tab)
        if RmapOwner.isSpecial(r.owner) {
            out.append(UInt8(ascii: "-"))
            appendDecimal(RmapOwner.signedValue(r.owner).magnitude, to: &out)
        } else {
            appendDecimal(r.owner, to: &out)
        }
        out.append(tab)
        appendDecimal(r.offset, to: &out)
        out.append(tab)
        out.append(r.isUnwritten ? UInt8(ascii: "1") : UInt8(ascii: "0"))
        out.append(tab)
        out.append(r.isAttrFork ? UInt8(ascii: "1") : UInt8(ascii: "0"))
        out.append(tab)
        out.append(r.isBmbtBlock ? UInt8(ascii: "1") : UInt8(ascii: "0"))
        out.append(UInt8(ascii: "\n"))
    }

    /// Appends `value` in decimal.
    @inline(__always)
    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0) // 32 bytes: enough for 20 digits
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                let (q, r) = v.quotientAndRemainder(dividingBy: 10)
                count += 1
                buffer[32 - count] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: r)
                v = q
            } while v != 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[(32 - count)...]))
        }
    }
}

extension RmapRecord: CustomStringConvertible {
    /// `RmapText.describe(_:)`: "[start 5626, len 2, owner 2641, offset 777]".
    public var description: String { RmapText.describe(self) }
}
