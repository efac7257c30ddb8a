import XFSBuffer

/// How far a run got, as its undo file records it.
public enum UndoState: String, Equatable, Sendable, CustomStringConvertible {
    /// The undo file was being written; the image was never touched.
    case writing = "WRITING"
    /// The undo file is complete and durable; the image may have been written.
    case prepared = "PREPARED"
    /// Every phase of the plan reached the image.
    case finished = "FINISHED"

    /// The state's name in lower case ("prepared").
    public var description: String { rawValue.lowercased() }
}

/// The check of an undo file that failed.
public enum UndoFileCheck: String, Equatable, Sendable, CustomStringConvertible {
    /// The first eight bytes are not "XFS-UNDO".
    case magic = "magic"
    /// The format version is not one this module reads.
    case version = "version"
    /// The header's CRC32c does not match its bytes.
    case headerCRC = "header CRC"
    /// The state word is none of the known states.
    case state = "state"
    /// A header field is impossible by itself: a zero image size, an identity outside the
    /// image, counts whose sections' lengths overflow.
    case headerFields = "header fields"
    /// The file is shorter than its header's counts say (cut short, or a count too large).
    case truncated = "file size (truncated)"
    /// The file is longer than its header's counts say.
    case trailingBytes = "file size (trailing bytes)"
    /// The blob's CRC32c does not match.
    case blobCRC = "blob CRC"
    /// The region table's CRC32c does not match.
    case tableCRC = "table CRC"
    /// The region table is inconsistent (misaligned, unsorted or overlapping regions, a
    /// region outside the image, counts that do not add up).
    case regionTable = "region table"
    /// A sector of saved old contents does not match its CRC32c.
    case dataCRC = "data CRC"

    /// The check's name ("header CRC").
    public var description: String { rawValue }
}

/// Why a plan could not be run or an undo file not restored.
public indirect enum UndoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The undo file's path already exists; the writer never overwrites one.
    case undoFileExists(path: String)
    /// A system call failed (`offset` is the file offset of a read or write).
    case systemCallFailed(call: String, path: String, offset: Int64?, errno: Errno)
    /// The image ended before a read did.
    case unexpectedEndOfImage(path: String, offset: Int64, length: Int)
    /// The caller's in-use check, or the kernel (a block device busy for O_EXCL), refused.
    case imageInUse(path: String, reason: String)
    /// A planned write lies outside the image.
    case writeOutsideImage(offset: Int64, length: Int, imageSize: Int64)
    /// The identity bytes lie outside the image.
    case identityOutsideImage(offset: Int64, length: Int, imageSize: Int64)
    /// A planned write would change the identity bytes, so restore could not recognize the
    /// image afterwards.
    case planChangesIdentity(writeOffset: Int64)
    /// The undo file failed a check.
    case invalidUndoFile(path: String, check: UndoFileCheck, detail: String)
    /// The image's identity bytes differ from the undo file's: another filesystem.
    case wrongFilesystem(offset: Int64, recorded: [UInt8], found: [UInt8])
    /// The image's size differs from the size recorded in the undo file.
    case imageSizeChanged(recorded: Int64, current: Int64)
    /// A sector holds neither its old contents nor any content the run may have left
    /// there: something else wrote the image (after the run, or before it when the state
    /// is `writing`).
    case imageChanged(sectorOffset: Int64, undoFileState: UndoState)
    /// A run stopped at `cause`. The undo file was left in `undoFileState` after
    /// `imageWritesCompleted` image writes: in `writing` the image is untouched; otherwise
    /// `UndoFile.restore` undoes what was written.
    case runStopped(cause: UndoError, undoFileState: UndoState, imageWritesCompleted: Int)

    /// A sentence naming what failed.
    public var description: String {
        switch self {
        case let .undoFileExists(path):
            return "undo file \(path) already exists; refusing to overwrite it"
        case let .systemCallFailed(call, path, offset, errno):
            return "\(call) failed on \(path)\(offset.map { " at byte \($0)" } ?? ""): \(errno)"
        case let .unexpectedEndOfImage(path, offset, length):
            return "\(path) ends before byte \(offset + Int64(length)) (reading \(length) bytes at \(offset))"
        case let .imageInUse(path, reason):
            return "\(path) is in use: \(reason)"
        case let .writeOutsideImage(offset, length, imageSize):
            return "planned write of \(length) bytes at \(offset) lies outside the image (\(imageSize) bytes)"
        case let .identityOutsideImage(offset, length, imageSize):
            return "identity bytes \(offset)..<\(offset + Int64(length)) lie outside the image (\(imageSize) bytes)"
        case let .planChangesIdentity(writeOffset):
            return "the planned write at \(writeOffset) changes the identity bytes"
        case let .invalidUndoFile(path, check, detail):
            return "undo file \(path): check '\(check)' failed: \(detail)"
        case let .wrongFilesystem(offset, recorded, found):
            return "the undo file belongs to another filesystem: bytes at \(offset) are \(hex(found)), "
                + "the undo file recorded \(hex(recorded))"
        case let .imageSizeChanged(recorded, current):
            return "the image's size changed: \(current) bytes, the undo file recorded \(recorded)"
        case let .imageChanged(sectorOffset, state):
            let when = state == .writing ? "although the run never wrote it" : "since the run"
            return "the image changed \(when): the sector at byte \(sectorOffset) holds neither its old "
                + "contents nor anything the run wrote there"
        case let .runStopped(cause, state, writes):
            let advice = state == .writing
                ? "the image was not touched"
                : "restore the undo file to undo them"
            return "the run stopped after \(writes) image writes, undo file \(state) (\(advice)): \(cause)"
        }
    }
}

/// Lowercase hex of bytes, no separators.
private func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
}
