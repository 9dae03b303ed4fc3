/// Reads a pickle as data, never as a program: a small stack machine that knows the opcodes of plain
/// values and containers, builds tensors only through the allowed rebuild functions (which it interprets
/// itself), and refuses everything else (docs/families.md, "Pickles"). Nothing is imported, called or
/// executed.
struct RestrictedUnpickler {
    private let bytes: ArraySlice<UInt8>
    private var at: Int
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    /// Bounds that keep a hostile pickle from exhausting memory through the machine itself.
    static let maxStack = 1_000_000
    static let maxMemo = 1_000_000

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        at = bytes.startIndex
    }

    static func load(_ bytes: ArraySlice<UInt8>) throws -> PickleValue {
        var machine = RestrictedUnpickler(bytes)
        return try machine.run()
    }

    private mutating func run() throws -> PickleValue {
        while true {
            let opcode = try byte()
            switch opcode {
            case 0x80: _ = try byte()                                          // PROTO
            case 0x95: _ = try take(8)                                         // FRAME (a length hint)
            case UInt8(ascii: "."):                                            // STOP
                guard stack.count == 1, marks.isEmpty else { throw refuse("the pickle ends with \(stack.count) values on its stack") }
                return stack[0]
            case UInt8(ascii: "("): marks.append(stack.count)                  // MARK
            case UInt8(ascii: "}"): try push(.dict(PickleDict()))              // EMPTY_DICT
            case UInt8(ascii: "]"): try push(.list(PickleList()))              // EMPTY_LIST
            case UInt8(ascii: ")"): try push(.tuple([]))                       // EMPTY_TUPLE
            case UInt8(ascii: "t"): try push(.tuple(try popMark()))            // TUPLE
            case 0x85: let a = try pop(); try push(.tuple([a]))                // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); try push(.tuple([a, b]))  // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); try push(.tuple([a, b, c]))  // TUPLE3
            case UInt8(ascii: "N"): try push(.none)                            // NONE
            case 0x88: try push(.bool(true))                                   // NEWTRUE
            case 0x89: try push(.bool(false))                                  // NEWFALSE
            case UInt8(ascii: "K"): try push(.int(Int(try byte())))            // BININT1
            case UInt8(ascii: "M"): try push(.int(Int(try unsigned(2))))       // BININT2
            case UInt8(ascii: "J"): try push(.int(Int(Int32(truncatingIfNeeded: try unsigned(4)))))  // BININT
            case 0x8A: try push(.int(try long(Int(try byte()))))               // LONG1
            case UInt8(ascii: "G"):                                            // BINFLOAT (big-endian)
                let raw = try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                try push(.float(Double(bitPattern: raw)))
            case UInt8(ascii: "X"): try push(.string(try text(Int(try unsigned(4)))))   // BINUNICODE
            case 0x8C: try push(.string(try text(Int(try byte()))))            // SHORT_BINUNICODE
            case 0x8D: try push(.string(try text(try length8())))              // BINUNICODE8
            case UInt8(ascii: "B"): try push(.bytes(Array(try take(Int(try unsigned(4))))))  // BINBYTES
            case UInt8(ascii: "C"): try push(.bytes(Array(try take(Int(try byte())))))       // SHORT_BINBYTES
            case UInt8(ascii: "q"): try put(Int(try byte()))                   // BINPUT
            case UInt8(ascii: "r"): try put(Int(try unsigned(4)))              // LONG_BINPUT
            case 0x94: try put(memo.count)                                     // MEMOIZE
            case UInt8(ascii: "h"): try get(Int(try byte()))                   // BINGET
            case UInt8(ascii: "j"): try get(Int(try unsigned(4)))              // LONG_BINGET
            case UInt8(ascii: "0"): _ = try pop()                              // POP
            case UInt8(ascii: "1"): _ = try popMark()                          // POP_MARK
            case UInt8(ascii: "2"): let top = try pop(); try push(top); try push(top)  // DUP
            case UInt8(ascii: "c"):                                            // GLOBAL
                let module = try line(), name = try line()
                try push(.global(try allowed(module, name)))
            case 0x93:                                                         // STACK_GLOBAL
                guard case let .string(name) = try pop(), case let .string(module) = try pop() else {
                    throw refuse("STACK_GLOBAL without two strings")
                }
                try push(.global(try allowed(module, name)))
            case UInt8(ascii: "Q"):                                            // BINPERSID
                try push(try persistent(try pop()))
            case UInt8(ascii: "R"):                                            // REDUCE
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args))
            case UInt8(ascii: "b"):                                            // BUILD
                // Only a dict's instance state (an OrderedDict's `_metadata`) is accepted, and dropped.
                _ = try pop()
                guard case .dict = try peek() else { throw refuse("BUILD on something other than a dict") }
            case UInt8(ascii: "s"):                                            // SETITEM
                let value = try pop(), key = try pop()
                try dictOnTop().items.append((key, value))
            case UInt8(ascii: "u"):                                            // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw refuse("SETITEMS with an odd number of values") }
                let dict = try dictOnTop()
                for i in stride(from: 0, to: items.count, by: 2) { dict.items.append((items[i], items[i + 1])) }
            case UInt8(ascii: "a"):                                            // APPEND
                let value = try pop()
                try listOnTop().items.append(value)
            case UInt8(ascii: "e"):                                            // APPENDS
                let items = try popMark()
                try listOnTop().items.append(contentsOf: items)
            default:
                throw refuse("opcode 0x\(String(opcode, radix: 16)) at byte \(at - bytes.startIndex - 1) is not a plain value, container or tensor rebuild")
            }
        }
    }

    // MARK: - Interpreting the allowed globals

    private func allowed(_ module: String, _ name: String) throws -> AllowedGlobal {
        guard let global = AllowedGlobal(module: module, name: name) else {
            throw refuse("the pickle names the global \(module).\(name), which is not a tensor rebuild or plain container")
        }
        return global
    }

    /// torch's persistent id for a storage: ('storage', StorageType, key, location, numel).
    private func persistent(_ pid: PickleValue) throws -> PickleValue {
        guard case let .tuple(parts) = pid, parts.count == 5, case let .string(kind) = parts[0], kind == "storage",
              case let .global(.storageType(dtype)) = parts[1], case let .string(key) = parts[2] else {
            throw refuse("a persistent id that is not a torch storage")
        }
        guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw refuse("a storage key '\(key)' that is not a plain name")
        }
        return .storage(StorageRef(dtype: dtype, key: key))
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case let .global(global) = callable, case let .tuple(a) = args else { throw refuse("REDUCE of something that is not an allowed global") }
        switch global {
        case .orderedDict:
            guard a.isEmpty else { throw refuse("OrderedDict built with arguments") }
            return .dict(PickleDict())
        case .rebuildTensor:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard a.count >= 6, case let .storage(storage) = a[0], case let .int(offset) = a[1],
                  let shape = ints(a[2]), let stride = ints(a[3]), shape.count == stride.count, offset >= 0 else {
                throw refuse("_rebuild_tensor_v2 with arguments that do not describe a tensor")
            }
            return .tensor(TensorRef(storage: storage, offset: offset, shape: shape, stride: stride))
        case .rebuildParameter:
            guard a.count >= 1, case .tensor = a[0] else { throw refuse("_rebuild_parameter without a tensor") }
            return a[0]
        case .storageType:
            throw refuse("a storage type called as a function")
        }
    }

    private func ints(_ value: PickleValue) -> [Int]? {
        guard case let .tuple(items) = value else { return nil }
        var out: [Int] = []
        for item in items {
            guard case let .int(n) = item, n >= 0 else { return nil }
            out.append(n)
        }
        return out
    }

    // MARK: - Stack, memo and bytes

    private mutating func push(_ value: PickleValue) throws {
        guard stack.count < Self.maxStack else { throw refuse("more than \(Self.maxStack) values on the stack") }
        stack.append(value)
    }

    private mutating func pop() throws -> PickleValue {
        guard let top = stack.popLast(), (marks.last ?? 0) <= stack.count else { throw refuse("a value taken from an empty stack") }
        return top
    }

    private func peek() throws -> PickleValue {
        guard let top = stack.last else { throw refuse("an empty stack") }
        return top
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw refuse("a MARK-ended opcode without a MARK") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private func dictOnTop() throws -> PickleDict {
        guard case let .dict(d) = try peek() else { throw refuse("SETITEM on something other than a dict") }
        return d
    }

    private func listOnTop() throws -> PickleList {
        guard case let .list(l) = try peek() else { throw refuse("APPEND on something other than a list") }
        return l
    }

    private mutating func put(_ index: Int) throws {
        guard memo.count < Self.maxMemo || memo[index] != nil else { throw refuse("more than \(Self.maxMemo) memo entries") }
        memo[index] = try peek()
    }

    private mutating func get(_ index: Int) throws {
        guard let value = memo[index] else { throw refuse("a memo entry \(index) that was never stored") }
        try push(value)
    }

    private mutating func byte() throws -> UInt8 {
        guard at < bytes.endIndex else { throw refuse("the pickle ends without STOP") }
        defer { at += 1 }
        return bytes[at]
    }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.endIndex - at else { throw refuse("a length of \(n) bytes past the end of the pickle") }
        defer { at += n }
        return bytes[at..<(at + n)]
    }

    private mutating func unsigned(_ n: Int) throws -> UInt64 {
        try take(n).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    private mutating func length8() throws -> Int {
        let n = try unsigned(8)
        guard n <= UInt64(Int.max) else { throw refuse("a length past the end of the pickle") }
        return Int(n)
    }

    /// A little-endian two's-complement integer of n ≤ 8 bytes.
    private mutating func long(_ n: Int) throws -> Int {
        guard n <= 8 else { throw refuse("an integer of \(n) bytes (more than 64 bits)") }
        guard n > 0 else { return 0 }
        let raw = try unsigned(n)
        let shift = UInt64(64 - 8 * n)
        return Int(Int64(bitPattern: raw << shift) >> Int64(shift))
    }

    private mutating func text(_ n: Int) throws -> String {
        let raw = try take(n)
        guard let s = String(validating: raw, as: UTF8.self) else { throw refuse("a string that is not UTF-8") }
        return s
    }

    private mutating func line() throws -> String {
        guard let end = bytes[at...].firstIndex(of: 0x0A) else { throw refuse("GLOBAL without a line end") }
        let s = String(decoding: bytes[at..<end], as: UTF8.self)
        at = end + 1
        return s
    }

    private func refuse(_ why: String) -> TorchPickleError { TorchPickleError("refused: \(why)") }
}
