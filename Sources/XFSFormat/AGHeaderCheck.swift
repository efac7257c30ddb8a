/// The checks the three AG header sectors share (AGF, AGI, AGFL), in the order the kernel's
/// verifiers make them: magic, version (AGF and AGI), CRC over the whole sector, seqno,
/// length (AGF and AGI), uuid. Each failure names the header and what was found.
struct AGHeaderCheck {
    /// "AGF", "AGI" or "AGFL".
    let name: String
    let agno: UInt32
    let geometry: Geometry

    /// "AG 3 AGF": where every error of these checks says it is.
    var location: String { "AG \(agno) \(name)" }

    /// Checks the shared fields of a decoded header against the filesystem.
    ///
    /// - Parameters:
    ///   - version: the header's version number, nil for the AGFL (which has none).
    ///   - length: the header's AG length, nil for the AGFL.
    func verify(_ sector: UnsafeRawBufferPointer, magic: UInt32, expectedMagic: UInt32, version: UInt32?,
                crcOffset: Int, seqno: UInt32, length: UInt32?, uuid: FSUUID) throws(XFSFormatError) {
        guard magic == expectedMagic else {
            throw XFSFormatError(.badMagic, location, "bad magic 0x\(String(magic, radix: 16))")
        }
        if let version, version != 1 { throw XFSFormatError(.badVersion, location, "bad versionnum \(version)") }
        guard try ByteReader(sector, location: location).crcMatches(
            span: Int(geometry.sectorSize), crcAt: crcOffset, "\(name) sector") else {
            throw XFSFormatError(.badCRC, location, "bad CRC")
        }
        guard seqno == agno else { throw corrupt("seqno \(seqno) is not the AG number \(agno)") }
        if let length {
            let expected = geometry.agLength(agno)
            guard length == expected else { throw corrupt("length \(length), expected \(expected)") }
        }
        guard uuid == geometry.metaUUID else {
            throw corrupt("uuid \(uuid) does not match the filesystem's \(geometry.metaUUID)")
        }
    }

    /// A corruption error at this header.
    func corrupt(_ detail: String) -> XFSFormatError { XFSFormatError(.corrupt, location, detail) }
}
