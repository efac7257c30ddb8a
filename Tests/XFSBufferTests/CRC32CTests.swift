import Testing
import XFSTestSupport
@testable import XFSBuffer

@Suite("CRC32c")
struct CRC32CTests {
    @Test("the standard check value of \"123456789\" is 0xE3069283")
    func checkValue() {
        let digits = Array("123456789".utf8)
        digits.withUnsafeBytes { bytes in
            #expect(CRC32C.checksum(bytes) == 0xE306_9283)
            #expect(CRC32C.portableChecksum(bytes) == 0xE306_9283)
        }
    }

    @Test("hardware and portable paths agree on every length and alignment up to 10 KiB")
    func hardwareMatchesPortable() {
        var random = SeededRandom(seed: 0xC5C)
        let bytes = (0..<12_288).map { _ in UInt8.random(in: 0...255, using: &random) }
        bytes.withUnsafeBytes { all in
            for length in Array(0..<80) + [1023, 1024, 3071, 3072, 3073, 4096, 6144, 9216, 10_240] {
                for start in 0..<3 {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    #expect(CRC32C.checksum(slice) == CRC32C.portableChecksum(slice),
                            "length \(length) start \(start)")
                }
            }
        }
    }

    @Test("update stores the checksum little-endian and verify accepts it; a flipped bit fails")
    func updateAndVerify() {
        var block = [UInt8](repeating: 0xA5, count: 4096)
        block.withUnsafeMutableBytes { object in
            CRC32C.update(object, crcFieldAt: 52)
            #expect(CRC32C.verify(UnsafeRawBufferPointer(object), crcFieldAt: 52))
            object[100] ^= 1
            #expect(!CRC32C.verify(UnsafeRawBufferPointer(object), crcFieldAt: 52))
        }
    }
}
