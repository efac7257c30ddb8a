// The fields of every metadata structure the fuzzer changes, with how the check depends on
// each (xfs-format.md §1-§5 for the layouts). The dependence is the oracle's: a changed
// `.rmap` field must give a non-zero verdict; `.maybe` and `.unread` fields may pass, and
// the report lists how often they did.

/// How the check's verdict depends on one field.
enum Dependence: String, Sendable, Comparable {
    /// The reverse mappings (or what the check verifies about the rmapbt) depend on it: any
    /// other value must give findings or an error.
    case rmap
    /// Read, but some values leave the reverse mappings as they were (a mode's permission
    /// bits, the fork offset of an inode whose attr fork maps nothing, a free-inode mask
    /// bit of an inode that maps nothing, ...).
    case maybe
    /// Nothing the check reads (timestamps, lsn, labels, spare space, bytes past the used
    /// part of a block, secondary superblocks, free inodes).
    case unread
    /// The CRC field itself: it changes whenever a mutation recomputes it; a structure
    /// whose CRC does not match is the oracle's other rule.
    case crc

    static func < (a: Dependence, b: Dependence) -> Bool { a.order < b.order }
    private var order: Int { [.rmap: 0, .maybe: 1, .unread: 2, .crc: 3][self]! }
}

/// One field of a region: its name (the tally key within the region's kind), where it is
/// and how wide, and how the check depends on it.
struct Field: Sendable {
    var name: String
    var offset: Int
    var size: Int
    var dependence: Dependence

    init(_ name: String, _ offset: Int, _ size: Int, _ dependence: Dependence) {
        self.name = name
        self.offset = offset
        self.size = size
        self.dependence = dependence
    }
}

enum FieldTables {
    /// The primary superblock (sector 0 of AG 0). Geometry, features and the uuid decide
    /// where everything is; the counters and quota/realtime fields do not.
    static func superblock(metaUUID: Bool) -> [Field] {
        [
            Field("magicnum", 0, 4, .rmap), Field("blocksize", 4, 4, .rmap), Field("dblocks", 8, 8, .rmap),
            Field("rblocks", 16, 8, .rmap), Field("rextents", 24, 8, .rmap),
            Field("uuid", 32, 16, metaUUID ? .unread : .rmap), Field("logstart", 48, 8, .rmap),
            Field("rootino", 56, 8, .maybe), Field("rbmino", 64, 8, .unread), Field("rsumino", 72, 8, .unread),
            Field("rextsize", 80, 4, .unread), Field("agblocks", 84, 4, .rmap), Field("agcount", 88, 4, .rmap),
            Field("rbmblocks", 92, 4, .unread), Field("logblocks", 96, 4, .rmap), Field("versionnum", 100, 2, .maybe),
            Field("sectsize", 102, 2, .rmap), Field("inodesize", 104, 2, .rmap), Field("inopblock", 106, 2, .rmap),
            Field("fname", 108, 12, .unread), Field("blocklog", 120, 1, .rmap), Field("sectlog", 121, 1, .rmap),
            Field("inodelog", 122, 1, .rmap), Field("inopblog", 123, 1, .rmap), Field("agblklog", 124, 1, .rmap),
            Field("rextslog", 125, 1, .unread), Field("inprogress", 126, 1, .rmap), Field("imax_pct", 127, 1, .unread),
            Field("icount", 128, 8, .maybe), Field("ifree", 136, 8, .maybe), Field("fdblocks", 144, 8, .maybe),
            Field("frextents", 152, 8, .unread), Field("uquotino", 160, 8, .unread), Field("gquotino", 168, 8, .unread),
            Field("qflags", 176, 2, .unread), Field("flags", 178, 1, .unread), Field("shared_vn", 179, 1, .unread),
            Field("inoalignmt", 180, 4, .unread), Field("unit", 184, 4, .unread), Field("width", 188, 4, .unread),
            Field("dirblklog", 192, 1, .unread), Field("logsectlog", 193, 1, .unread),
            Field("logsectsize", 194, 2, .unread), Field("logsunit", 196, 4, .unread),
            Field("features2", 200, 4, .maybe), Field("bad_features2", 204, 4, .unread),
            Field("features_compat", 208, 4, .unread), Field("features_ro_compat", 212, 4, .maybe),
            Field("features_incompat", 216, 4, .maybe), Field("features_log_incompat", 220, 4, .rmap),
            Field("crc", 224, 4, .crc), Field("spino_align", 228, 4, .maybe), Field("pquotino", 232, 8, .unread),
            Field("lsn", 240, 8, .unread), Field("meta_uuid", 248, 16, metaUUID ? .rmap : .unread),
        ]
    }

    /// The AGF (§2.1).
    static let agf: [Field] = [
        Field("magicnum", 0, 4, .rmap), Field("versionnum", 4, 4, .rmap), Field("seqno", 8, 4, .rmap),
        Field("length", 12, 4, .rmap), Field("bno_root", 16, 4, .rmap), Field("cnt_root", 20, 4, .rmap),
        Field("rmap_root", 24, 4, .rmap), Field("bno_level", 28, 4, .rmap), Field("cnt_level", 32, 4, .rmap),
        Field("rmap_level", 36, 4, .rmap), Field("flfirst", 40, 4, .rmap), Field("fllast", 44, 4, .rmap),
        Field("flcount", 48, 4, .rmap), Field("freeblks", 52, 4, .maybe), Field("longest", 56, 4, .maybe),
        Field("btreeblks", 60, 4, .maybe), Field("uuid", 64, 16, .rmap), Field("rmap_blocks", 80, 4, .rmap),
        Field("refcount_blocks", 84, 4, .maybe), Field("refcount_root", 88, 4, .rmap),
        Field("refcount_level", 92, 4, .rmap), Field("spare64", 96, 112, .unread), Field("lsn", 208, 8, .unread),
        Field("crc", 216, 4, .crc), Field("spare2", 220, 4, .unread),
    ]

    /// The AGI (§2.2).
    static let agi: [Field] = [
        Field("magicnum", 0, 4, .rmap), Field("versionnum", 4, 4, .rmap), Field("seqno", 8, 4, .rmap),
        Field("length", 12, 4, .rmap), Field("count", 16, 4, .maybe), Field("root", 20, 4, .rmap),
        Field("level", 24, 4, .rmap), Field("freecount", 28, 4, .maybe), Field("newino", 32, 4, .unread),
        Field("dirino", 36, 4, .unread), Field("unlinked", 40, 256, .maybe), Field("uuid", 296, 16, .rmap),
        Field("crc", 312, 4, .crc), Field("pad", 316, 4, .unread), Field("lsn", 320, 8, .unread),
        Field("free_root", 328, 4, .rmap), Field("free_level", 332, 4, .rmap), Field("iblocks", 336, 4, .maybe),
        Field("fblocks", 340, 4, .maybe),
    ]

    /// The AGFL (§2.3): the header, then one slot per block; only the slots in the AGF's
    /// window are read.
    static func agfl(sectorSize: Int, activeSlots: Set<Int>) -> [Field] {
        var fields = [
            Field("magicnum", 0, 4, .rmap), Field("seqno", 4, 4, .rmap), Field("uuid", 8, 16, .rmap),
            Field("lsn", 24, 8, .unread), Field("crc", 32, 4, .crc),
        ]
        for slot in 0 ..< (sectorSize - 36) / 4 {
            fields.append(activeSlots.contains(slot) ? Field("active slot", 36 + 4 * slot, 4, .rmap)
                                                     : Field("inactive slot", 36 + 4 * slot, 4, .unread))
        }
        return fields
    }

    /// Entry layout of one AG btree or the bmbt (§3.3): record, key slot and pointer sizes,
    /// and the fields of a record and of a key.
    struct TreeShape {
        var recordSize: Int
        var keySize: Int
        var pointerSize: Int
        var recordFields: [Field]
        var keyFields: [Field]
    }

    static func shape(_ tree: String) -> TreeShape {
        switch tree {
        case "bnobt", "cntbt":
            // Node keys guide lookups; a record walk (what the check does) does not read them.
            return TreeShape(recordSize: 8, keySize: 8, pointerSize: 4,
                             recordFields: [Field("startblock", 0, 4, .rmap), Field("blockcount", 4, 4, .rmap)],
                             keyFields: [Field("startblock", 0, 4, .maybe), Field("blockcount", 4, 4, .maybe)])
        case "inobt":
            return TreeShape(recordSize: 16, keySize: 4, pointerSize: 4,
                             recordFields: [Field("startino", 0, 4, .rmap), Field("holemask", 4, 2, .rmap),
                                            Field("count", 6, 1, .maybe), Field("freecount", 7, 1, .maybe),
                                            Field("free", 8, 8, .maybe)],
                             keyFields: [Field("startino", 0, 4, .maybe)])
        case "finobt":
            // The scan walks the finobt for its blocks (OWN_INOBT) only.
            return TreeShape(recordSize: 16, keySize: 4, pointerSize: 4,
                             recordFields: [Field("startino", 0, 4, .maybe), Field("holemask", 4, 2, .maybe),
                                            Field("count", 6, 1, .maybe), Field("freecount", 7, 1, .maybe),
                                            Field("free", 8, 8, .maybe)],
                             keyFields: [Field("startino", 0, 4, .maybe)])
        case "refcountbt":
            return TreeShape(recordSize: 12, keySize: 4, pointerSize: 4,
                             recordFields: [Field("startblock", 0, 4, .maybe), Field("blockcount", 4, 4, .maybe),
                                            Field("refcount", 8, 4, .maybe)],
                             keyFields: [Field("startblock", 0, 4, .maybe)])
        case "rmapbt":
            let key = [Field("startblock", 0, 4, .rmap), Field("owner", 4, 8, .rmap), Field("offset", 12, 8, .rmap)]
            return TreeShape(recordSize: 24, keySize: 40, pointerSize: 4,
                             recordFields: [Field("startblock", 0, 4, .rmap), Field("blockcount", 4, 4, .rmap),
                                            Field("owner", 8, 8, .rmap), Field("offset", 16, 8, .rmap)],
                             keyFields: key.map { Field("low." + $0.name, $0.offset, $0.size, $0.dependence) }
                                 + key.map { Field("high." + $0.name, 20 + $0.offset, $0.size, $0.dependence) })
        case "bmbt":
            return TreeShape(recordSize: 16, keySize: 8, pointerSize: 8,
                             recordFields: [Field("extent.l0", 0, 8, .rmap), Field("extent.l1", 8, 8, .rmap)],
                             keyFields: [Field("startoff", 0, 8, .maybe)])
        default:
            preconditionFailure("no shape for \(tree)")
        }
    }

    /// The short (AG btree) or long (bmbt) v5 block header (§3.1, §3.2). Walks follow
    /// right siblings; only the rmapbt's verifier checks left siblings against the chain.
    static func header(long: Bool, leftSibling: Dependence) -> [Field] {
        long ? [
            Field("magic", 0, 4, .rmap), Field("level", 4, 2, .rmap), Field("numrecs", 6, 2, .rmap),
            Field("leftsib", 8, 8, leftSibling), Field("rightsib", 16, 8, .rmap), Field("blkno", 24, 8, .rmap),
            Field("lsn", 32, 8, .unread), Field("uuid", 40, 16, .rmap), Field("owner", 56, 8, .rmap),
            Field("crc", 64, 4, .crc), Field("pad", 68, 4, .unread),
        ] : [
            Field("magic", 0, 4, .rmap), Field("level", 4, 2, .rmap), Field("numrecs", 6, 2, .rmap),
            Field("leftsib", 8, 4, leftSibling), Field("rightsib", 12, 4, .rmap), Field("blkno", 16, 8, .rmap),
            Field("lsn", 24, 8, .unread), Field("uuid", 32, 16, .rmap), Field("owner", 48, 4, .rmap),
            Field("crc", 52, 4, .crc),
        ]
    }

    /// One btree block: its header, then its entries up to numrecs (records in a leaf;
    /// keys and pointers in a node, the pointers after maxrecs key slots). The entries past
    /// numrecs are not read.
    static func btreeBlock(tree: String, long: Bool, blockSize: Int, level: Int, numrecs: Int) -> [Field] {
        let shape = shape(tree)
        let headerSize = long ? 72 : 56
        var fields = header(long: long, leftSibling: tree == "rmapbt" ? .rmap : .maybe)
        if level == 0 && (tree == "finobt" || tree == "refcountbt") {
            // The records of these leaves are not all read (see `shape`), so neither is
            // their count.
            fields[2].dependence = .maybe
        }
        if level == 0 {
            let maxrecs = (blockSize - headerSize) / shape.recordSize
            for i in 0 ..< min(numrecs, maxrecs) {
                for f in shape.recordFields {
                    fields.append(Field("rec." + f.name, headerSize + i * shape.recordSize + f.offset, f.size, f.dependence))
                }
            }
        } else {
            let maxrecs = (blockSize - headerSize) / (shape.keySize + shape.pointerSize)
            for i in 0 ..< min(numrecs, maxrecs) {
                for f in shape.keyFields {
                    fields.append(Field("key." + f.name, headerSize + i * shape.keySize + f.offset, f.size, f.dependence))
                }
                fields.append(Field("ptr", headerSize + maxrecs * shape.keySize + i * shape.pointerSize, shape.pointerSize, .rmap))
            }
        }
        return fields
    }

    /// What one fork of a clean inode holds, for its field table.
    enum ForkContent {
        /// Local data (short-form directory, inline symlink, short-form attrs) or a device:
        /// no mappings.
        case none
        /// `count` packed extent records.
        case extents(count: Int)
        /// A bmbt root with `numrecs` keys and pointers; pointers after `maxrecs` key slots.
        case btree(numrecs: Int, maxrecs: Int)
    }

    /// An inode (§5.2): the core, then the data fork and the attr fork as the clean inode
    /// lays them out. nrext64 inodes keep the data extent count at byte 24, others at 76.
    /// An extent count is `.rmap` unless its fork is a btree or a device (the count is not
    /// what the walk reads there); the fork offset and attr format are `.rmap` only when the
    /// attr fork maps blocks.
    static func inode(nrext64: Bool, dataStart: Int, data: ForkContent, attrStart: Int?, attr: ForkContent,
                      attrHasMappings: Bool, dataCount: Dependence, attrCount: Dependence) -> [Field] {
        let forkoff: Dependence = attrHasMappings ? .rmap : .maybe
        var fields = [
            Field("magic", 0, 2, .rmap), Field("mode", 2, 2, .maybe), Field("version", 4, 1, .rmap),
            Field("format", 5, 1, .rmap), Field("onlink", 6, 2, .unread), Field("uid", 8, 4, .unread),
            Field("gid", 12, 4, .unread), Field("nlink", 16, 4, .unread), Field("projid", 20, 4, .unread),
            Field(nrext64 ? "big_nextents" : "pad", 24, 8, nrext64 ? dataCount : .unread),
            Field("timestamps", 32, 24, .unread), Field("size", 56, 8, .unread), Field("nblocks", 64, 8, .unread),
            Field("extsize", 72, 4, .unread),
            Field(nrext64 ? "big_anextents" : "nextents", 76, 4, nrext64 ? attrCount : dataCount),
            Field(nrext64 ? "pad2" : "anextents", 80, 2, nrext64 ? .unread : attrCount),
            Field("forkoff", 82, 1, forkoff), Field("aformat", 83, 1, forkoff),
            Field("dmevmask", 84, 4, .unread), Field("dmstate", 88, 2, .unread), Field("flags", 90, 2, .maybe),
            Field("gen", 92, 4, .unread), Field("next_unlinked", 96, 4, .unread), Field("crc", 100, 4, .crc),
            Field("changecount", 104, 8, .unread), Field("lsn", 112, 8, .unread), Field("flags2", 120, 8, .maybe),
            Field("cowextsize", 128, 4, .unread), Field("pad3", 132, 12, .unread), Field("crtime", 144, 8, .unread),
            Field("ino", 152, 8, .rmap), Field("uuid", 160, 16, .rmap),
        ]
        func fork(_ name: String, _ start: Int, _ content: ForkContent) {
            switch content {
            case .none:
                break
            case .extents(let count):
                for i in 0 ..< count {
                    fields.append(Field(name + " extent.l0", start + 16 * i, 8, .rmap))
                    fields.append(Field(name + " extent.l1", start + 16 * i + 8, 8, .rmap))
                }
            case .btree(let numrecs, let maxrecs):
                fields.append(Field(name + " bmbt root level", start, 2, .rmap))
                fields.append(Field(name + " bmbt root numrecs", start + 2, 2, .rmap))
                for i in 0 ..< numrecs {
                    fields.append(Field(name + " bmbt root key", start + 4 + 8 * i, 8, .maybe))
                    fields.append(Field(name + " bmbt root ptr", start + 4 + 8 * maxrecs + 8 * i, 8, .rmap))
                }
            }
        }
        fork("data", dataStart, data)
        if let attrStart { fork("attr", attrStart, attr) }
        return fields
    }
}
