#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What `UndoFile.restore` did.
public enum RestoreOutcome: Equatable, Sendable, CustomStringConvertible {
    /// The run had written the image (state prepared or finished): `regionsRestored`
    /// regions got their old contents back, `regionsAlreadyOld` already held them.
    case restored(regionsRestored: Int, regionsAlreadyOld: Int)
    /// The undo file never reached "prepared", so the run never wrote the image; nothing
    /// was written. `regionsVerified` regions were checked to hold their old contents (nil
    /// when the undo file's table was not completely written, so only the image's size and
    /// identity were checked).
    case nothingToUndo(regionsVerified: Int?)

    /// A sentence for the user.
    public var description: String {
        switch self {
        case let .restored(restored, alreadyOld):
            return "restored \(restored) regions; \(alreadyOld) already held their old contents"
        case let .nothingToUndo(verified?):
            return "nothing to undo: the run stopped before writing the image; "
                + "all \(verified) regions hold their old contents"
        case .nothingToUndo(nil):
            return "nothing to undo: the run stopped before writing the image "
                + "(its undo file is incomplete, so only the image's size and identity were checked)"
        }
    }
}

extension UndoFile {
    /// Puts the image back as it was before the run.
    ///
    /// `inUseCheck` is called first with the image path; it returns why the image must
    /// not be written (e.g. "mounted on /mnt"), or nil. This is where the caller refuses a
    /// mounted image.
    ///
    /// Before writing anything it checks the image's identity bytes and size, the saved
    /// data's CRCs, and that every sector of every region holds its old contents or one of
    /// the contents the run may have left there; then it writes back the regions that
    /// differ from their old contents and fsyncs the image. In state `writing` it writes
    /// nothing and checks that the image still holds the old contents.
    ///
    /// - Throws: `.imageInUse`, `.wrongFilesystem`, `.imageSizeChanged`, `.imageChanged`,
    ///   `.invalidUndoFile` (a saved sector's CRC), `.systemCallFailed`.
    public func restore(imagePath: String,
                        inUseCheck: (_ imagePath: String) -> String?) throws(UndoError) -> RestoreOutcome {
        if let reason = inUseCheck(imagePath) { throw .imageInUse(path: imagePath, reason: reason) }
        guard state != .writing else { return try verifyUntouched(imagePath: imagePath) }
        guard let regions else {
            preconditionFailure("UndoFile.open requires the table of a \(state) undo file")
        }
        let image = try OpenFile.image(path: imagePath, writable: true, system: systemCalls)
        try checkIdentityAndSize(of: image)
        let undo = try OpenFile(path: path, flags: O_RDONLY, system: systemCalls)

        // First pass, no writes: every region holds something the run explains.
        var changed: [Int] = []
        for (index, region) in regions.enumerated() {
            let current = try read(image, region)
            let old = try oldContents(of: region, number: index, from: undo)
            if current == old { continue }
            for sector in 0 ..< region.sectorCount {
                let start = sector * UndoFormat.sectorSize
                let crc = RawBytes.crc32c(current[start ..< start + UndoFormat.sectorSize])
                guard region.crcs(ofSector: sector).contains(crc) else {
                    throw .imageChanged(sectorOffset: region.offset + Int64(start), undoFileState: state)
                }
            }
            changed.append(index)
        }
        // Second pass: the old contents back (read again, so their CRCs are checked again).
        for index in changed {
            let region = regions[index]
            try image.write(oldContents(of: region, number: index, from: undo)[...], at: region.offset)
        }
        if !changed.isEmpty { try image.sync() }
        return .restored(regionsRestored: changed.count, regionsAlreadyOld: regions.count - changed.count)
    }

    /// For a run that never wrote the image: checks that it still holds what the undo file
    /// saw, writing nothing. The image is read 256 sectors at a time: in a file still being
    /// written the regions' lengths are bounded only by the table, not by saved data.
    private func verifyUntouched(imagePath: String) throws(UndoError) -> RestoreOutcome {
        let image = try OpenFile.image(path: imagePath, writable: false, system: systemCalls)
        try checkIdentityAndSize(of: image)
        guard let regions else { return .nothingToUndo(regionsVerified: nil) }
        let sectorsPerRead = 256
        for region in regions {
            for first in stride(from: 0, to: region.sectorCount, by: sectorsPerRead) {
                let count = min(sectorsPerRead, region.sectorCount - first)
                let offset = region.offset + Int64(first * UndoFormat.sectorSize)
                let current = try image.read(count: count * UndoFormat.sectorSize, at: offset)
                guard current.count == count * UndoFormat.sectorSize else {
                    throw .imageSizeChanged(recorded: imageSize, current: offset + Int64(current.count))
                }
                for sector in 0 ..< count {
                    let start = sector * UndoFormat.sectorSize
                    guard RawBytes.crc32c(current[start ..< start + UndoFormat.sectorSize])
                        == region.oldCRC(ofSector: first + sector) else {
                        throw .imageChanged(sectorOffset: offset + Int64(start), undoFileState: state)
                    }
                }
            }
        }
        return .nothingToUndo(regionsVerified: regions.count)
    }

    /// Refuses another filesystem (identity bytes differ), then an image whose size changed.
    private func checkIdentityAndSize(of image: borrowing OpenFile) throws(UndoError) {
        let size = try image.status().size
        let found = try image.read(count: identity.count, at: identityOffset)
        if found.count < identity.count { throw .imageSizeChanged(recorded: imageSize, current: size) }
        if found != identity {
            throw .wrongFilesystem(offset: identityOffset, recorded: identity, found: found)
        }
        if size != imageSize { throw .imageSizeChanged(recorded: imageSize, current: size) }
    }

    /// The region's current bytes in the image.
    private func read(_ image: borrowing OpenFile, _ region: UndoRegion) throws(UndoError) -> [UInt8] {
        let bytes = try image.read(count: region.length, at: region.offset)
        guard bytes.count == region.length else {
            throw .imageSizeChanged(recorded: imageSize, current: region.offset + Int64(bytes.count))
        }
        return bytes
    }
}
