import Foundation
import Testing
@testable import SafeTensors

/// Every rule of docs/formats.md, "The reader's checks", each violation as its own case.
struct ReaderValidationTests {
    let eightBytes = [UInt8](repeating: 1, count: 8)

    @Test func validFileOpens() throws {
        let bytes = TestFiles.image(header: #"{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eightBytes)
        let file = try SafeTensorsFile.open(TestFiles.write(bytes))
        #expect(file.metadata == ["a": "b"])
        #expect(file.tensors.map(\.name) == ["x"])
        #expect(try file.bytes("x") == eightBytes)
    }

    @Test func emptyFile() { #expect(TestFiles.reason([]) == .headerTooSmall(fileSize: 0)) }

    @Test func shorterThanLengthPrefix() { #expect(TestFiles.reason([1, 2, 3]) == .headerTooSmall(fileSize: 3)) }

    @Test func headerLengthPastEnd() {
        let bytes = TestFiles.image(header: "{}", declaredLength: 100)
        #expect(TestFiles.reason(bytes) == .headerPastEnd(headerLength: 100, fileSize: 10))
    }

    @Test func headerOverCap() {
        let bytes = TestFiles.image(header: "{}", declaredLength: 100_000_001)
        #expect(TestFiles.reason(bytes) == .headerTooLarge(100_000_001))
    }

    @Test func hugeHeaderLengthDoesNotOverflow() {
        let bytes = TestFiles.image(header: "{}", declaredLength: UInt64.max)
        #expect(TestFiles.reason(bytes) == .headerTooLarge(UInt64.max))
    }

    @Test func nonUTF8Header() {
        var bytes = TestFiles.image(header: #"{"__metadata__":{"a":"bX"}}"#)
        bytes[8 + 23] = 0xFF
        #expect(TestFiles.reason(bytes) == .headerNotUTF8)
    }

    @Test func nonJSONHeader() {
        guard case .headerNotJSON? = TestFiles.reason(TestFiles.image(header: "{not json}")) else {
            Issue.record("expected headerNotJSON"); return
        }
    }

    @Test func headerNotAnObject() { #expect(TestFiles.reason(TestFiles.image(header: "[]")) == .headerNotObject) }

    @Test func duplicateKeys() {
        let header = #"{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#
        guard case let .headerNotJSON(why)? = TestFiles.reason(TestFiles.image(header: header, data: [1, 2])) else {
            Issue.record("expected a duplicate-key error"); return
        }
        #expect(why.contains("duplicate key"))
    }

    @Test func nonStringMetadataValue() {
        let bytes = TestFiles.image(header: #"{"__metadata__":{"unquoted_int":0}}"#)
        #expect(TestFiles.reason(bytes) == .metadataValueNotString(key: "unquoted_int"))
    }

    @Test func unknownDType() {
        let bytes = TestFiles.image(header: #"{"x":{"dtype":"F12","shape":[1],"data_offsets":[0,1]}}"#, data: [0])
        #expect(TestFiles.reason(bytes) == .unknownDType("F12"))
    }

    @Test func negativeOffset() {
        let bytes = TestFiles.image(header: #"{"x":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}"#, data: [0])
        #expect(TestFiles.reason(bytes) == .offsetsInvalid("offsets must be non-negative integers"))
    }

    @Test func gapBetweenTensors() {
        let header = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#
        guard case let .offsetsInvalid(why)? = TestFiles.reason(TestFiles.image(header: header, data: [0, 0, 0])) else {
            Issue.record("expected offsetsInvalid"); return
        }
        #expect(why.hasPrefix("gap"))
    }

    @Test func overlappingTensors() {
        let header = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#
        guard case let .offsetsInvalid(why)? = TestFiles.reason(TestFiles.image(header: header, data: [0, 0, 0])) else {
            Issue.record("expected offsetsInvalid"); return
        }
        #expect(why.hasPrefix("overlap"))
    }

    @Test func firstTensorNotAtZero() {
        let bytes = TestFiles.image(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0])
        #expect(TestFiles.reason(bytes) == .offsetsInvalid("gap: begins at 1, expected 0"))
    }

    @Test func shapeDoesNotMatchByteRange() {
        let bytes = TestFiles.image(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eightBytes)
        #expect(TestFiles.reason(bytes) == .sizeMismatch(expected: 12, actual: 8))
    }

    @Test func shapeOverflow() {
        let bytes = TestFiles.image(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: eightBytes)
        #expect(TestFiles.reason(bytes) == .sizeOverflow)
    }

    @Test func trailingBytes() {
        let bytes = TestFiles.image(header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0, 9])
        guard case let .lengthMismatch(expected, actual)? = TestFiles.reason(bytes) else {
            Issue.record("expected lengthMismatch"); return
        }
        #expect(actual == expected + 1)
    }

    @Test func truncatedData() {
        let bytes = TestFiles.image(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0])
        guard case let .lengthMismatch(expected, actual)? = TestFiles.reason(bytes) else {
            Issue.record("expected lengthMismatch"); return
        }
        #expect(actual == expected - 5)
    }

    @Test func whitespaceAroundHeaderIsAccepted() throws {
        let bytes = TestFiles.image(header: "\t\n{}\r ")
        #expect(TestFiles.reason(bytes) == nil)
    }

    @Test func emptyAndScalarTensors() throws {
        let header = #"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#
        let bytes = TestFiles.image(header: header, data: Array(Float(2.5).bitPattern.littleEndianBytes))
        let file = try SafeTensorsFile.open(TestFiles.write(bytes))
        #expect(try file.floats("s") == [2.5])
        #expect(try file.floats("e") == [])
    }

    @Test func directoryIsRejected() {
        let folder = TestFiles.temporaryFolder().path
        #expect(throws: SafeTensorsError(file: folder, reason: .isDirectory)) { try SafeTensorsFile.open(folder) }
    }

    @Test func errorMessageNamesFileAndTensor() {
        let error = SafeTensorsError(file: "a.safetensors", tensor: "w", reason: .sizeMismatch(expected: 12, actual: 8))
        #expect(error.description == "a.safetensors: tensor 'w': shape × dtype is 12 bytes but data_offsets span 8 bytes")
    }
}

extension UInt32 {
    var littleEndianBytes: [UInt8] { (0..<4).map { UInt8((self >> (8 * $0)) & 0xFF) } }
}
