// XFSInMemoryBTrees: the package in one import.
//
// `import XFSInMemoryBTrees` brings every layer's public API (re-exported below) and the
// record index: RecordIndex, a sorted, transactional index of a user's own fixed-size
// records (IndexRecord, IndexKey), encoded through a bounds-checked RecordWriter and
// RecordReader so that user code touches no pointer. The index is an in-memory XFS btree
// (XFSInMemoryBTree) run by the generic engine (XFSBTree); it adds what a general-purpose
// index needs and XFS leaves to its callers: refusing duplicate keys (or keeping them in
// insertion order with a serial number), a record count, rollback of whole transactions,
// and lazy ordered iteration.
//
// Each layer stays importable on its own (`import XFSBTree`, ...), for code that wants one.

@_exported import XFSBTree
@_exported import XFSBuffer
@_exported import XFSFormat
@_exported import XFSInMemoryBTree
@_exported import XFSMemoryFile
@_exported import XFSRmap
@_exported import XFSTransaction
@_exported import XFSUndo
